"""Polar PMD data frames and control point: layouts, round trips, nothing but DecodeError."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.errors import DecodeError
from drivers.polar import pmd


def test_polar_sdk_ecg_type_0_vector() -> None:
    """Test the Polar SDK's own ECG vector (EcgDataTest.kt, "process raw ecg data type 0")."""
    # polar-ble-sdk: header 00 | 00 94 35 77 00 00 00 00 (2 000 000 000 ns) | 00; samples
    # 02 80 FF -> -32766 uV and 02 80 00 -> 32770 uV.
    frame = bytes.fromhex("000094357700000000000280ff028000")
    decoded = pmd.decode_pmd_data(frame)
    assert decoded.timestamp_ns == 2_000_000_000
    assert decoded.samples.tolist() == [[-32766], [32770]]
    assert decoded.last_sample_utc_s == pytest.approx(946_684_802.0)


def test_delta_frame_layout() -> None:
    """Test a hand-built delta frame: 24-bit reference, then 2-bit deltas packed LSB first."""
    # PPG, 4 channels, 22-bit: reference (1, 2, 3, 4); one block: width 2, count 2,
    # deltas (+1, -1, 0, -2) then (-2, 1, 1, 0) -> bits LSB first:
    # 01 11 00 10 | 10 01 01 00 -> bytes 0b10001101 = 0x8D, 0b00010110 = 0x16
    frame = (
        bytes([1])
        + bytes(8)
        + b"\x80"
        + bytes.fromhex("010000020000030000040000")
        + bytes([2, 2, 0x8D, 0x16])
    )
    decoded = pmd.decode_pmd_data(frame, channels=4, resolution_bits=22)
    assert decoded.compressed
    assert decoded.samples.tolist() == [[1, 2, 3, 4], [2, 1, 3, 2], [0, 2, 4, 2]]


def test_delta_reference_is_sign_extended_at_the_resolution() -> None:
    """Test that a 22-bit reference with bit 21 set is negative, as Polar's parser reads it."""
    frame = bytes([1]) + bytes(8) + b"\x80" + bytes.fromhex("ffff3f") * 4
    assert pmd.decode_pmd_data(frame, channels=4, resolution_bits=22).samples.tolist() == [[-1] * 4]


def test_ecg_frame_type_0_int24_samples() -> None:
    """Test that an ECG raw frame decodes its 3-byte signed microvolt samples."""
    # type 0 (ECG), timestamp 0x0102030405060708, frame type 0, samples -1, 1000, -8388608
    frame = bytes.fromhex("00080706050403020100ffffffe80300000080")
    decoded = pmd.decode_pmd_data(frame)
    assert decoded.measurement == "ecg"
    assert decoded.timestamp_ns == 0x0102030405060708
    assert decoded.samples.tolist() == [[-1], [1000], [-8388608]]


def test_ppg_frame_has_four_channels() -> None:
    """Test that a PPG raw frame decodes as (n, 4): ppg0..2 and ambient."""
    body = bytes.fromhex("010000020000030000040000") * 2
    decoded = pmd.decode_pmd_data(bytes([1]) + bytes(8) + b"\x00" + body)
    assert decoded.samples.shape == (2, 4)
    assert decoded.samples[0].tolist() == [1, 2, 3, 4]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", "header"),
        (bytes(9), "header"),
        (bytes([9]) + bytes(9) + b"\x01\x02\x03", "unknown measurement"),
        (bytes([0]) + bytes(8) + b"\x80" + b"\x01\x02\x03", "needs the stream's"),
        (bytes([0]) + bytes(8) + b"\x00", "no samples"),
        (bytes([0]) + bytes(8) + b"\x05" + bytes(3), "frame type"),
        (bytes([1]) + bytes(8) + b"\x00" + bytes(11), "whole number"),
    ],
)
def test_malformed_frames_raise_decode_error(payload: bytes, reason: str) -> None:
    """Test that short, unknown, delta or ragged frames raise DecodeError."""
    with pytest.raises(DecodeError, match=reason):
        pmd.decode_pmd_data(payload)


_LAYOUTS = [
    ("ecg", 0, 1, 24),
    ("ppg", 0, 4, 24),
    ("acc", 0, 3, 8),
    ("acc", 1, 3, 16),
    ("acc", 2, 3, 24),
]


@st.composite
def frames(draw: st.DrawFn) -> pmd.PmdFrame:
    measurement, frame_type, channels, bits = draw(st.sampled_from(_LAYOUTS))
    n = draw(st.integers(1, 40))
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    values = draw(st.lists(st.integers(lo, hi), min_size=n * channels, max_size=n * channels))
    samples = np.array(values, dtype=np.int32).reshape(n, channels)
    timestamp = draw(st.integers(0, (1 << 64) - 1))
    return pmd.PmdFrame(measurement, frame_type, timestamp, samples)


@st.composite
def compressed_frames(draw: st.DrawFn) -> tuple[pmd.PmdFrame, int]:
    measurement, channels = draw(st.sampled_from([("ecg", 1), ("ecg", 3), ("ppg", 4), ("acc", 3)]))
    resolution = draw(st.integers(8, 24))
    n = draw(st.integers(1, 300))
    lo, hi = -(1 << (resolution - 1)), (1 << (resolution - 1)) - 1
    start = draw(st.lists(st.integers(lo, hi), min_size=channels, max_size=channels))
    steps = draw(
        st.lists(st.integers(-300, 300), min_size=(n - 1) * channels, max_size=(n - 1) * channels)
    )
    deltas = np.array(steps, dtype=np.int64).reshape(n - 1, channels)
    samples = np.clip(np.cumsum(np.vstack([start, deltas]), axis=0), lo, hi).astype(np.int32)
    return pmd.PmdFrame(
        measurement, pmd.COMPRESSED, draw(st.integers(0, 2**63)), samples
    ), resolution


@given(compressed_frames())
def test_compressed_frames_round_trip(case: tuple[pmd.PmdFrame, int]) -> None:
    """Test that delta-compressed encodings decode to the exact samples, for any settings."""
    frame, resolution = case
    data = pmd.encode_pmd_data(frame, resolution_bits=resolution)
    decoded = pmd.decode_pmd_data(data, channels=frame.samples.shape[1], resolution_bits=resolution)
    np.testing.assert_array_equal(decoded.samples, frame.samples)
    assert decoded.compressed


@given(st.binary(max_size=64), st.integers(0, 40), st.integers(0, 40))
def test_compressed_random_bytes_raise_nothing_but_decode_error(
    body: bytes, channels: int, resolution: int
) -> None:
    """Test that any compressed frame bytes, under any settings, decode or raise DecodeError."""
    with contextlib.suppress(DecodeError):
        pmd.decode_pmd_data(
            bytes([1]) + bytes(8) + b"\x80" + body, channels=channels, resolution_bits=resolution
        )


@given(frames())
def test_round_trips(frame: pmd.PmdFrame) -> None:
    """Test that decode(encode(frame)) reproduces every field and sample."""
    decoded = pmd.decode_pmd_data(pmd.encode_pmd_data(frame))
    assert (decoded.measurement, decoded.frame_type, decoded.timestamp_ns) == (
        frame.measurement,
        frame.frame_type,
        frame.timestamp_ns,
    )
    np.testing.assert_array_equal(decoded.samples, frame.samples)


@given(st.binary(max_size=64))
def test_random_bytes_raise_nothing_but_decode_error(data: bytes) -> None:
    """Test that arbitrary bytes either decode or raise DecodeError."""
    with contextlib.suppress(DecodeError):
        pmd.decode_pmd_data(data)


@given(st.binary(max_size=16))
def test_control_point_parsers_raise_nothing_but_decode_error(data: bytes) -> None:
    """Test that arbitrary control point bytes either parse or raise DecodeError."""
    for parse in (pmd.parse_command, pmd.decode_control_point_response):
        with contextlib.suppress(DecodeError):
            parse(data)


def test_start_command_round_trips_through_the_device_side() -> None:
    """Test that a start command carries measurement, rate, resolution and channels."""
    command = pmd.start_command(pmd.StreamSettings("ppg", 135, 22, 4))
    assert command.hex() == "02010001870001011600040104"  # channels is one byte
    op, measurement, settings = pmd.parse_command(command)
    assert (op, measurement) == (pmd.OP_START, "ppg")
    assert settings == {0: 135, 1: 22, 4: 4}
    response = pmd.decode_control_point_response(pmd.encode_control_point_response(2, "ppg", 0))
    assert response.ok
    assert response.measurement == "ppg"


def test_control_point_error_response() -> None:
    """Test an error indication: F0 02 01 0B (invalid number of channels, as a Verity answers)."""
    response = pmd.decode_control_point_response(bytes.fromhex("f002010b"))
    assert not response.ok
    assert response.status_name == "invalid_number_of_channels"
    assert (response.op_code, response.measurement, response.more) == (pmd.OP_START, "ppg", False)


def test_the_device_saying_it_stopped_streams_is_told_from_a_response() -> None:
    """Test ONLINE_MEASUREMENT_STOPPED (polar-ble-sdk: a control point notification that does
    not start F0; 01 then the stopped types), a response (None), and broken ones."""
    assert pmd.decode_measurement_stopped(bytes.fromhex("0100")) == ("ecg",)
    assert pmd.decode_measurement_stopped(bytes.fromhex("010002")) == ("ecg", "acc")
    assert pmd.decode_measurement_stopped(bytes.fromhex("f002000000")) is None
    assert pmd.encode_measurement_stopped(("ppg", "ppi")) == bytes.fromhex("010103")
    for broken in ("01", "0130"):
        with pytest.raises(DecodeError):
            pmd.decode_measurement_stopped(bytes.fromhex(broken))
