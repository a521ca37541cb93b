"""PMD peak-to-peak interval frames (measurement type 3), laid out as polar-ble-sdk's PpiData
parses them: heart rate, interval, error estimate, flags; six bytes an interval."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.catalog import decode_json, lookup
from drivers.errors import DecodeError
from drivers.polar.ppi import PpiSample, decode_ppi_frame, encode_ppi_frame

# 75 bpm, 778 ms (0x030a), error 111 ms, skin contact (supported); then a blocked interval
FRAME = "03" + "0000000000000000" + "00" + "4b0a036f0006" + "50ee0214000f"


def test_intervals_with_their_flags_as_the_sdk_reads_them() -> None:
    timestamp_ns, samples = decode_ppi_frame(bytes.fromhex(FRAME))
    assert timestamp_ns == 0
    assert samples == (
        PpiSample(75, 778, 111, blocker=False, skin_contact=True, skin_contact_supported=True),
        PpiSample(80, 750, 20, blocker=True, skin_contact=True, skin_contact_supported=True),
    )


def test_wgw_decode_pmd_data_shows_intervals() -> None:
    characteristic = lookup("pmd_data")
    assert characteristic is not None
    decoded = decode_json(characteristic, bytes.fromhex(FRAME))
    assert decoded["measurement"] == "ppi"
    intervals = decoded["intervals"]
    assert isinstance(intervals, list)
    assert [i["interval_ms"] for i in intervals] == [778, 750]


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ("03000000000000000000", "not whole 6-byte intervals"),  # a header alone
        (FRAME[:-2], "not whole 6-byte intervals"),
        ("0300000000000000008000" + "4b0a036f0006", "only raw type 0"),  # compressed
        ("02" + FRAME[2:], "not PPI"),
        ("0300", "shorter than the 10-byte header"),
    ],
)
def test_broken_frames_say_what_is_wrong(data: str, problem: str) -> None:
    with pytest.raises(DecodeError, match=problem):
        decode_ppi_frame(bytes.fromhex(data))


samples = st.builds(
    PpiSample,
    st.integers(0, 255),
    st.integers(0, 65535),
    st.integers(0, 65535),
    st.booleans(),
    st.booleans(),
    st.booleans(),
)


@given(st.lists(samples, min_size=1, max_size=30), st.integers(0, 2**64 - 1))
def test_frames_round_trip(intervals: list[PpiSample], timestamp_ns: int) -> None:
    frame = encode_ppi_frame(tuple(intervals), timestamp_ns)
    assert decode_ppi_frame(frame) == (timestamp_ns, tuple(intervals))


@given(st.binary(max_size=40))
def test_any_bytes_raise_nothing_but_decode_error(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode_ppi_frame(b"\x03" + data)
