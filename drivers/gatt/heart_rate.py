"""Heart Rate Measurement (0x2A37) decoder and encoder, per the Heart Rate Service spec 1.0.

Layout (little-endian): flags u8; heart rate u8 or u16 (flags bit 0); energy expended u16 kJ
if flags bit 3; then RR intervals, u16 each in 1/1024 s, if flags bit 4. Flags bits 1-2 are the
sensor contact status: bit 2 says the feature is supported, bit 1 that contact is detected.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Literal

from drivers.errors import DecodeError

PROFILE = "heart_rate_measurement"

_FLAG_UINT16 = 0x01
_FLAG_CONTACT_DETECTED = 0x02
_FLAG_CONTACT_SUPPORTED = 0x04
_FLAG_ENERGY = 0x08
_FLAG_RR = 0x10

SensorContact = Literal["detected", "not_detected", "unsupported"]


@dataclass(frozen=True, slots=True)
class HeartRateMeasurement:
    """One decoded Heart Rate Measurement notification."""

    heart_rate_bpm: int
    sensor_contact: SensorContact
    energy_expended_kj: int | None
    rr_intervals_1024: tuple[int, ...]

    @property
    def rr_intervals_ms(self) -> list[float]:
        """RR intervals in milliseconds (the wire unit is 1/1024 s)."""
        return [rr * 1000.0 / 1024.0 for rr in self.rr_intervals_1024]

    def to_json(self) -> dict[str, object]:
        """The reading as the JSON fields the gateway stores and publishes."""
        return {
            "heart_rate_bpm": self.heart_rate_bpm,
            "sensor_contact": self.sensor_contact,
            "energy_expended_kj": self.energy_expended_kj,
            "rr_intervals_ms": self.rr_intervals_ms,
        }


def decode_heart_rate_measurement(data: bytes | bytearray) -> HeartRateMeasurement:
    """Decode one 0x2A37 payload.

    Raises:
        DecodeError: The payload is empty, truncated, or its RR part has an odd length.
    """
    if not data:
        raise DecodeError(PROFILE, "empty payload")
    flags = data[0]
    pos = 1
    if flags & _FLAG_UINT16:
        if len(data) < pos + 2:
            raise DecodeError(PROFILE, "truncated: uint16 heart rate announced")
        (heart_rate,) = struct.unpack_from("<H", data, pos)
        pos += 2
    else:
        if len(data) < pos + 1:
            raise DecodeError(PROFILE, "truncated: no heart rate value")
        heart_rate = data[pos]
        pos += 1
    energy: int | None = None
    if flags & _FLAG_ENERGY:
        if len(data) < pos + 2:
            raise DecodeError(PROFILE, "truncated: energy expended announced")
        (energy,) = struct.unpack_from("<H", data, pos)
        pos += 2
    rr: tuple[int, ...] = ()
    rest = len(data) - pos
    if flags & _FLAG_RR:
        if rest == 0 or rest % 2:
            raise DecodeError(PROFILE, f"RR intervals announced but {rest} bytes follow")
        rr = struct.unpack_from(f"<{rest // 2}H", data, pos)
    elif rest:
        raise DecodeError(PROFILE, f"{rest} unexpected trailing bytes")
    return HeartRateMeasurement(heart_rate, _sensor_contact(flags), energy, rr)


def encode_heart_rate_measurement(m: HeartRateMeasurement) -> bytes:
    """Encode a measurement the way a device would (uint8 rate when it fits)."""
    flags = 0
    body = bytearray()
    if m.heart_rate_bpm > 0xFF:
        flags |= _FLAG_UINT16
        body += struct.pack("<H", m.heart_rate_bpm)
    else:
        body.append(m.heart_rate_bpm)
    if m.sensor_contact != "unsupported":
        flags |= _FLAG_CONTACT_SUPPORTED
        if m.sensor_contact == "detected":
            flags |= _FLAG_CONTACT_DETECTED
    if m.energy_expended_kj is not None:
        flags |= _FLAG_ENERGY
        body += struct.pack("<H", m.energy_expended_kj)
    if m.rr_intervals_1024:
        flags |= _FLAG_RR
        body += struct.pack(f"<{len(m.rr_intervals_1024)}H", *m.rr_intervals_1024)
    return bytes([flags]) + bytes(body)


def _sensor_contact(flags: int) -> SensorContact:
    if not flags & _FLAG_CONTACT_SUPPORTED:
        return "unsupported"
    return "detected" if flags & _FLAG_CONTACT_DETECTED else "not_detected"
