"""Polar PMD peak-to-peak interval frames (measurement type 3: Verity Sense, OH1).

As polar-ble-sdk parses them (``PpiData``, raw frame type 0; compressed PPI frames do not
exist): the PMD header (measurement type, a 64-bit timestamp the SDK ignores for PPI, frame
type), then six bytes per interval: heart rate (``uint8``, bpm), the interval (``uint16``, ms),
its error estimate (``uint16``, ms), and flags: bit 0 the blocker bit (the interval is invalid,
e.g. movement), bit 1 skin contact, bit 2 skin contact supported.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from drivers.errors import DecodeError
from drivers.polar.pmd import PROFILE

PPI_MEASUREMENT: Final = 3
_HEADER = struct.Struct("<BQB")
_SAMPLE = struct.Struct("<BHHB")


@dataclass(frozen=True, slots=True)
class PpiSample:
    """One peak-to-peak interval."""

    heart_rate_bpm: int
    interval_ms: int
    error_ms: int  # below 10 ms: accurate; above 30 ms: movement or a loose sensor
    blocker: bool  # the interval is not valid
    skin_contact: bool
    skin_contact_supported: bool

    def to_json(self) -> dict[str, object]:
        """As ``wgw decode`` and the outbox show it."""
        return {
            "heart_rate_bpm": self.heart_rate_bpm,
            "interval_ms": self.interval_ms,
            "error_ms": self.error_ms,
            "blocker": self.blocker,
            "skin_contact": self.skin_contact,
            "skin_contact_supported": self.skin_contact_supported,
        }


def decode_ppi_frame(data: bytes | bytearray) -> tuple[int, tuple[PpiSample, ...]]:
    """The frame's timestamp (ns, as sent) and its intervals.

    Raises:
        DecodeError: Not a PPI frame, a compressed or unknown frame type, no intervals, or a
            body that is not whole six-byte intervals.
    """
    if len(data) < _HEADER.size:
        raise DecodeError(PROFILE, f"{len(data)} bytes is shorter than the 10-byte header")
    measurement, timestamp_ns, frame_type = _HEADER.unpack_from(data)
    if measurement != PPI_MEASUREMENT:
        raise DecodeError(PROFILE, f"measurement type {measurement} is not PPI")
    if frame_type != 0:
        raise DecodeError(PROFILE, f"PPI frame type {frame_type:#x}: only raw type 0 exists")
    body = memoryview(bytes(data))[_HEADER.size :]
    if not body or len(body) % _SAMPLE.size:
        raise DecodeError(PROFILE, f"{len(body)} bytes of PPI: not whole 6-byte intervals")
    samples = tuple(
        PpiSample(hr, ppi, error, bool(flags & 1), bool(flags & 2), bool(flags & 4))
        for hr, ppi, error, flags in _SAMPLE.iter_unpack(body)
    )
    return timestamp_ns, samples


def encode_ppi_frame(samples: tuple[PpiSample, ...], timestamp_ns: int = 0) -> bytes:
    """The notification a device sends (the simulator's and the tests' side)."""
    body = b"".join(
        _SAMPLE.pack(
            s.heart_rate_bpm,
            s.interval_ms,
            s.error_ms,
            s.blocker | s.skin_contact << 1 | s.skin_contact_supported << 2,
        )
        for s in samples
    )
    return _HEADER.pack(PPI_MEASUREMENT, timestamp_ns, 0) + body
