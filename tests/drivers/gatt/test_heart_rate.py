"""Heart Rate Measurement (0x2A37): spec layouts, round trips, and nothing but DecodeError."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.errors import DecodeError
from drivers.gatt.heart_rate import (
    HeartRateMeasurement,
    decode_heart_rate_measurement,
    encode_heart_rate_measurement,
)


@pytest.mark.parametrize(
    ("data", "bpm", "contact", "energy", "rr_1024"),
    [
        # polar-ble-sdk BleHrClientTest.kt: "hr format uint8", "hr format uint16",
        # "sensor contact supported / not supported", "energy expended", "rr interval"
        ("00ff", 255, "unsupported", None, ()),
        ("018080", 32896, "unsupported", None, ()),
        ("0600", 0, "detected", None, ()),
        ("0400", 0, "not_detected", None, ()),
        ("0200", 0, "unsupported", None, ()),
        ("090000ffff", 0, "unsupported", 65535, ()),
        ("08007f80", 0, "unsupported", 32895, ()),
        ("1000ffff", 0, "unsupported", None, (65535,)),
        ("110000ffff7f80", 0, "unsupported", None, (65535, 32895)),
    ],
)
def test_polar_sdk_vectors(
    data: str, bpm: int, contact: str, energy: int | None, rr_1024: tuple[int, ...]
) -> None:
    """Test the Heart Rate Measurement vectors of Polar's SDK tests."""
    m = decode_heart_rate_measurement(bytes.fromhex(data))
    assert (m.heart_rate_bpm, m.sensor_contact, m.energy_expended_kj) == (bpm, contact, energy)
    assert m.rr_intervals_1024 == rr_1024
    # Polar truncates to whole ms: 65535/1024 s -> 63999 ms, 32895 -> 32124 ms
    assert [int(ms) for ms in m.rr_intervals_ms] == [int(r * 1000 / 1024) for r in rr_1024]


def test_uint8_rate_with_contact_and_rr() -> None:
    """Test that a uint8 rate, detected contact and two RR intervals decode per the spec."""
    # flags 0x16: uint8 rate, contact supported + detected, RR present; 72 bpm; RR 1024, 512
    m = decode_heart_rate_measurement(bytes.fromhex("164800040002"))
    assert m.heart_rate_bpm == 72
    assert m.sensor_contact == "detected"
    assert m.energy_expended_kj is None
    assert m.rr_intervals_ms == [1000.0, 500.0]


def test_uint16_rate_with_energy_and_no_contact_support() -> None:
    """Test that a uint16 rate and energy expended decode, contact 'unsupported'."""
    m = decode_heart_rate_measurement(bytes.fromhex("092c01e803"))
    assert (m.heart_rate_bpm, m.sensor_contact, m.energy_expended_kj) == (300, "unsupported", 1000)
    assert m.rr_intervals_ms == []


def test_contact_supported_but_not_detected() -> None:
    """Test that flags 0b100 mean contact supported but not detected."""
    assert decode_heart_rate_measurement(b"\x04\x3c").sensor_contact == "not_detected"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", "empty"),
        (b"\x01\x3c", "uint16"),
        (b"\x08\x3c\x01", "energy"),
        (b"\x10\x3c", "RR intervals announced"),
        (b"\x10\x3c\x00\x04\x01", "RR intervals announced"),
        (b"\x00\x3c\x00", "trailing"),
    ],
)
def test_malformed_payloads_raise_decode_error(payload: bytes, reason: str) -> None:
    """Test that truncated or inconsistent payloads raise DecodeError naming the problem."""
    with pytest.raises(DecodeError, match=reason):
        decode_heart_rate_measurement(payload)


measurements = st.builds(
    HeartRateMeasurement,
    heart_rate_bpm=st.integers(0, 0xFFFF),
    sensor_contact=st.sampled_from(["detected", "not_detected", "unsupported"]),
    energy_expended_kj=st.none() | st.integers(0, 0xFFFF),
    rr_intervals_1024=st.lists(st.integers(0, 0xFFFF), max_size=9).map(tuple),
)


@given(measurements)
def test_round_trips(m: HeartRateMeasurement) -> None:
    """Test that decode(encode(m)) == m for every valid measurement."""
    assert decode_heart_rate_measurement(encode_heart_rate_measurement(m)) == m


@given(st.binary(max_size=40))
def test_random_bytes_raise_nothing_but_decode_error(data: bytes) -> None:
    """Test that arbitrary bytes either decode or raise DecodeError."""
    with contextlib.suppress(DecodeError):
        decode_heart_rate_measurement(data)
