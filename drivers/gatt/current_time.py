"""Current Time (0x2A2B): the device's clock, read at connect to place its stored records.

Per the Current Time Service and the GATT Specification Supplement: Exact Time 256 (a Day Date
Time: Date Time 7 bytes and day of week u8, 0 unknown, 1 Monday ... 7 Sunday; then fractions
of a second u8, in 1/256 s) and adjust reason u8 (flags: manual, reference, time zone, DST).
"""

from __future__ import annotations

from dataclasses import dataclass

from drivers.errors import DecodeError
from drivers.gatt.fields import DateTime, Reader, Writer

PROFILE = "current_time"


@dataclass(frozen=True, slots=True)
class CurrentTime:
    """A device's clock as it read it."""

    date_time: DateTime
    day_of_week: int = 0
    fractions256: int = 0
    adjust_reason: int = 0

    def epoch_s(self) -> float | None:
        """Seconds since 1970 on the device's clock (read as UTC); ``None`` if not known."""
        whole = self.date_time.epoch_s()
        return None if whole is None else whole + self.fractions256 / 256.0


def decode_current_time(data: bytes | bytearray) -> CurrentTime:
    """Decode a Current Time value.

    Raises:
        DecodeError: Truncated, trailing bytes, a field out of range, or a day of week past 7.
    """
    r = Reader(data, PROFILE)
    date_time = r.date_time("date time")
    day_of_week = r.u8("day of week")
    if day_of_week > 7:
        raise DecodeError(PROFILE, f"day of week {day_of_week} out of range")
    value = CurrentTime(date_time, day_of_week, r.u8("fractions256"), r.u8("adjust reason"))
    r.done()
    return value


def encode_current_time(value: CurrentTime) -> bytes:
    """The value's bytes (the simulator's side)."""
    return (
        Writer()
        .date_time(value.date_time)
        .u8(value.day_of_week)
        .u8(value.fractions256)
        .u8(value.adjust_reason)
        .bytes()
    )
