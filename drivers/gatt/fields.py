"""Bounds-checked little-endian field readers and writers shared by the GATT decoders.

Every read past the end raises ``DecodeError`` naming the profile and the field, so a decoder
is a straight list of reads and never indexes bytes itself.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from drivers.errors import DecodeError
from drivers.gatt import ieee11073

if TYPE_CHECKING:
    from drivers.gatt.ieee11073 import MedFloat


@dataclass(frozen=True, slots=True)
class DateTime:
    """The GATT Date Time characteristic (0x2A08): device-local time, 0 = not known."""

    year: int
    month: int
    day: int
    hours: int
    minutes: int
    seconds: int

    def iso(self) -> str | None:
        """``YYYY-MM-DDTHH:MM:SS`` (no zone: the device's local time), or ``None`` if unknown."""
        if not (self.year and self.month and self.day):
            return None
        return (
            f"{self.year:04d}-{self.month:02d}-{self.day:02d}"
            f"T{self.hours:02d}:{self.minutes:02d}:{self.seconds:02d}"
        )

    def epoch_s(self) -> float | None:
        """Seconds since 1970 on the device's clock read as UTC; ``None`` if unknown or no date.

        A device clock has no zone: what it means in UTC is learnt by comparing it with ours
        (``drivers.ble.device_clock``).
        """
        if not (self.year and self.month and self.day):
            return None
        try:
            moment = datetime(
                self.year, self.month, self.day, self.hours, self.minutes, self.seconds, tzinfo=UTC
            )
        except ValueError:  # 31 February: each field in range, the date impossible
            return None
        return moment.timestamp()


class Reader:
    """Reads fields from the start of a payload, raising ``DecodeError`` on any shortfall."""

    def __init__(self, data: bytes | bytearray, profile: str) -> None:
        if not data:
            raise DecodeError(profile, "empty payload")
        self._data = bytes(data)
        self._pos = 0
        self.profile = profile

    def _take(self, size: int, field: str) -> bytes:
        end = self._pos + size
        if end > len(self._data):
            msg = (
                f"truncated: {field} needs {size} bytes at offset {self._pos},"
                f" {len(self._data)} in all"
            )
            raise DecodeError(self.profile, msg)
        chunk = self._data[self._pos : end]
        self._pos = end
        return chunk

    def u8(self, field: str) -> int:
        """An unsigned byte."""
        return self._take(1, field)[0]

    def u16(self, field: str) -> int:
        """An unsigned 16-bit integer."""
        value: int = struct.unpack("<H", self._take(2, field))[0]
        return value

    def u24(self, field: str) -> int:
        """An unsigned 24-bit integer."""
        return int.from_bytes(self._take(3, field), "little")

    def sfloat(self, field: str) -> MedFloat:
        """An IEEE 11073 16-bit SFLOAT."""
        return ieee11073.sfloat(self.u16(field))

    def float32(self, field: str) -> MedFloat:
        """An IEEE 11073 32-bit FLOAT."""
        return ieee11073.float32(int.from_bytes(self._take(4, field), "little"))

    def date_time(self, field: str) -> DateTime:
        """A 7-byte Date Time, range-checked per the GATT specification supplement."""
        value = DateTime(
            self.u16(field),
            self.u8(field),
            self.u8(field),
            self.u8(field),
            self.u8(field),
            self.u8(field),
        )
        if not (value.year == 0 or 1582 <= value.year <= 9999):
            raise DecodeError(self.profile, f"{field}: year {value.year} out of range")
        if value.month > 12 or value.day > 31:
            raise DecodeError(
                self.profile, f"{field}: month {value.month} or day {value.day} out of range"
            )
        if value.hours > 23 or value.minutes > 59 or value.seconds > 59:
            raise DecodeError(self.profile, f"{field}: time of day out of range")
        return value

    def done(self) -> None:
        """Refuse trailing bytes the flags did not announce."""
        rest = len(self._data) - self._pos
        if rest:
            raise DecodeError(self.profile, f"{rest} unexpected trailing bytes")


class Writer:
    """Builds a payload field by field (the simulator's side of every decoder)."""

    def __init__(self) -> None:
        self._out = bytearray()

    def u8(self, value: int) -> Writer:
        """An unsigned byte."""
        self._out.append(value & 0xFF)
        return self

    def u16(self, value: int) -> Writer:
        """An unsigned 16-bit integer."""
        self._out += struct.pack("<H", value & 0xFFFF)
        return self

    def u24(self, value: int) -> Writer:
        """An unsigned 24-bit integer."""
        self._out += (value & 0xFFFFFF).to_bytes(3, "little")
        return self

    def medfloat(self, value: MedFloat) -> Writer:
        """An SFLOAT or FLOAT, by the width the value was made with."""
        self._out += ieee11073.to_raw(value).to_bytes(value.bits // 8, "little")
        return self

    def date_time(self, value: DateTime) -> Writer:
        """A 7-byte Date Time."""
        self.u16(value.year)
        for part in (value.month, value.day, value.hours, value.minutes, value.seconds):
            self.u8(part)
        return self

    def bytes(self) -> bytes:
        """The payload so far."""
        return bytes(self._out)
