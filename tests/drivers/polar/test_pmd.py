"""Polar PMD data frames and control point: layouts, round trips, nothing but DecodeError."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.errors import DecodeError
from drivers.polar import pmd


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
        (bytes([0]) + bytes(8) + b"\x80" + b"\x01\x02\x03", "frame type"),
        (bytes([0]) + bytes(8) + b"\x00", "whole number"),
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
    for parse in (pmd.parse_start_command, pmd.decode_control_point_response):
        with contextlib.suppress(DecodeError):
            parse(data)


def test_start_command_round_trips_through_the_device_side() -> None:
    """Test that a start command carries measurement, rate, resolution and channels."""
    measurement, settings = pmd.parse_start_command(pmd.start_command("ppg", 135, 22, 4))
    assert measurement == "ppg"
    assert settings == {0: 135, 1: 22, 4: 4}
    response = pmd.decode_control_point_response(pmd.encode_control_point_response(2, "ppg", 0))
    assert response.ok
    assert response.measurement == "ppg"
