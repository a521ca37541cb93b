"""InfiniTime's Motion Service (PineTime): step count and raw accelerometer values.

As the firmware serves them (InfiniTime ``doc/MotionService.md`` and
``src/components/ble/MotionService.cpp``): service ``00030000-78fc-48fe-8e23-433b3a1942d0``;
step count ``...0001...``, one ``uint32`` (the steps the watch has counted since midnight);
raw motion values ``...0002...``, three ``int16`` X, Y, Z (the accelerometer's units as the
firmware passes them on, not converted here). Both READ and NOTIFY, little-endian (the nRF52's
own byte order: the firmware copies its variables out as they lie in memory).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from drivers.errors import DecodeError

MOTION_SERVICE: Final = "00030000-78fc-48fe-8e23-433b3a1942d0"
STEP_COUNT: Final = "00030001-78fc-48fe-8e23-433b3a1942d0"
MOTION_VALUES: Final = "00030002-78fc-48fe-8e23-433b3a1942d0"
STEP_PROFILE: Final = "infinitime_step_count"
MOTION_PROFILE: Final = "infinitime_motion_values"
_STEPS = struct.Struct("<I")
_MOTION = struct.Struct("<hhh")


@dataclass(frozen=True, slots=True)
class MotionValues:
    """One accelerometer reading: X, Y and Z in the firmware's raw units."""

    x: int
    y: int
    z: int

    def to_json(self) -> dict[str, object]:
        """As ``wgw decode`` and the outbox show it."""
        return {"x": self.x, "y": self.y, "z": self.z}


def decode_step_count(data: bytes | bytearray) -> int:
    """The watch's step count; raises ``DecodeError`` unless exactly four bytes."""
    if len(data) != _STEPS.size:
        raise DecodeError(STEP_PROFILE, f"{len(data)} bytes, expected {_STEPS.size}")
    return int(_STEPS.unpack(data)[0])


def encode_step_count(steps: int) -> bytes:
    """The payload the watch sends for ``steps`` (the simulator's side)."""
    return _STEPS.pack(steps)


def decode_motion_values(data: bytes | bytearray) -> MotionValues:
    """X, Y and Z; raises ``DecodeError`` unless exactly six bytes."""
    if len(data) != _MOTION.size:
        raise DecodeError(MOTION_PROFILE, f"{len(data)} bytes, expected {_MOTION.size}")
    return MotionValues(*_MOTION.unpack(data))


def encode_motion_values(value: MotionValues) -> bytes:
    """The payload the watch sends (the simulator's side)."""
    return _MOTION.pack(value.x, value.y, value.z)
