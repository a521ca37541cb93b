"""Battery Level (0x2A19), per the Battery Service 1.0: one uint8, 0-100 %."""

from __future__ import annotations

from drivers.errors import DecodeError
from drivers.gatt.fields import Reader

PROFILE = "battery_level"


def decode_battery_level(data: bytes | bytearray) -> int:
    """The battery level in percent; raises ``DecodeError`` only (101-255 are reserved)."""
    r = Reader(data, PROFILE)
    level = r.u8("level")
    r.done()
    if level > 100:
        raise DecodeError(PROFILE, f"level {level} is above 100 %")
    return level


def encode_battery_level(level_pct: int) -> bytes:
    """The payload a device sends for ``level_pct``."""
    return bytes([level_pct])
