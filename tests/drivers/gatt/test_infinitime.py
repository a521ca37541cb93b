"""InfiniTime's Motion Service (PineTime): step count and raw motion values, byte for byte as
the firmware serves them (doc/MotionService.md, src/components/ble/MotionService.cpp)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.catalog import decode_json, lookup
from drivers.errors import DecodeError
from drivers.gatt import infinitime


def test_vectors_as_the_firmware_lays_them_out() -> None:
    """Test a uint32 step count and three int16 (X, Y, Z), little-endian as the nRF52 keeps
    them, through ``wgw decode``'s table too (by name and by UUID)."""
    assert infinitime.decode_step_count(bytes.fromhex("d2040000")) == 1234
    assert infinitime.decode_step_count(bytes.fromhex("ffffffff")) == 2**32 - 1
    motion = infinitime.decode_motion_values(bytes.fromhex("0100feff0004"))
    assert motion == infinitime.MotionValues(1, -2, 1024)
    by_name = lookup("infinitime_motion_values")
    by_uuid = lookup(infinitime.STEP_COUNT)
    assert by_name is not None and by_uuid is not None
    assert decode_json(by_name, bytes.fromhex("0080ff7f0000")) == {"x": -32768, "y": 32767, "z": 0}
    assert decode_json(by_uuid, bytes.fromhex("00000000")) == {"steps": 0}


@pytest.mark.parametrize("data", ["", "d204", "d2040000ff"])
def test_a_step_count_of_the_wrong_length_is_refused(data: str) -> None:
    with pytest.raises(DecodeError, match="expected 4"):
        infinitime.decode_step_count(bytes.fromhex(data))


@pytest.mark.parametrize("data", ["", "0100feff00", "0100feff000400"])
def test_motion_values_of_the_wrong_length_are_refused(data: str) -> None:
    with pytest.raises(DecodeError, match="expected 6"):
        infinitime.decode_motion_values(bytes.fromhex(data))


@given(st.integers(0, 2**32 - 1))
def test_step_counts_round_trip(steps: int) -> None:
    assert infinitime.decode_step_count(infinitime.encode_step_count(steps)) == steps


@given(st.tuples(*(st.integers(-(2**15), 2**15 - 1) for _ in range(3))))
def test_motion_values_round_trip(xyz: tuple[int, int, int]) -> None:
    value = infinitime.MotionValues(*xyz)
    assert infinitime.decode_motion_values(infinitime.encode_motion_values(value)) == value


@given(st.binary(max_size=12))
def test_any_bytes_raise_nothing_but_decode_error(data: bytes) -> None:
    for decode in (infinitime.decode_step_count, infinitime.decode_motion_values):
        with contextlib.suppress(DecodeError):
            decode(data)
