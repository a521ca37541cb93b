"""IEEE 11073-20601 SFLOAT (16-bit) and FLOAT (32-bit), as the GATT health profiles use them.

SFLOAT: 4-bit signed exponent over a 12-bit signed mantissa; FLOAT: 8-bit signed exponent over a
24-bit signed mantissa; value = mantissa * 10**exponent. With exponent 0, five mantissas are
special values (Bluetooth SIG, "Personal Health Devices Transcoding White Paper", 2.2.2):
NaN 0x7FF / 0x7FFFFF, NRes 0x800 / 0x800000, +INF 0x7FE / 0x7FFFFE, -INF 0x802 / 0x800002,
and the reserved 0x801 / 0x800001.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Special(StrEnum):
    """The special values of both formats, named as ``wgw decode`` prints them."""

    NAN = "NaN"
    NRES = "NRes"
    POS_INF = "+INF"
    NEG_INF = "-INF"
    RFU = "RFU"


# unsigned mantissa (exponent 0) -> special value, per format width in bits
_SPECIALS = {
    16: {
        0x7FF: Special.NAN,
        0x800: Special.NRES,
        0x7FE: Special.POS_INF,
        0x802: Special.NEG_INF,
        0x801: Special.RFU,
    },
    32: {
        0x7FFFFF: Special.NAN,
        0x800000: Special.NRES,
        0x7FFFFE: Special.POS_INF,
        0x800002: Special.NEG_INF,
        0x800001: Special.RFU,
    },
}
_MANTISSA_BITS = {16: 12, 32: 24}


@dataclass(frozen=True, slots=True)
class MedFloat:
    """A decoded SFLOAT or FLOAT, kept exactly as sent (mantissa and exponent)."""

    mantissa: int
    exponent: int
    bits: int = 16

    @property
    def special(self) -> Special | None:
        """The special value this encodes, if any."""
        if self.exponent != 0:
            return None
        width = _MANTISSA_BITS[self.bits]
        return _SPECIALS[self.bits].get(self.mantissa & ((1 << width) - 1))

    @property
    def value(self) -> float | None:
        """The number, or ``None`` for a special value."""
        if self.special is not None:
            return None
        if self.exponent >= 0:
            return float(self.mantissa * 10**self.exponent)
        return round(self.mantissa * 10.0**self.exponent, -self.exponent)


def sfloat(raw: int) -> MedFloat:
    """Decode a 16-bit SFLOAT from its unsigned integer."""
    return MedFloat(_signed(raw & 0x0FFF, 12), _signed(raw >> 12, 4), 16)


def float32(raw: int) -> MedFloat:
    """Decode a 32-bit FLOAT from its unsigned integer."""
    return MedFloat(_signed(raw & 0xFFFFFF, 24), _signed(raw >> 24, 8), 32)


def to_raw(value: MedFloat) -> int:
    """The unsigned integer that encodes ``value`` in its own format."""
    if value.bits == 16:
        return ((value.exponent & 0xF) << 12) | (value.mantissa & 0x0FFF)
    return ((value.exponent & 0xFF) << 24) | (value.mantissa & 0xFFFFFF)


def special(kind: Special, bits: int = 16) -> MedFloat:
    """The encoding of a special value in the 16- or 32-bit format."""
    raw = next(raw for raw, name in _SPECIALS[bits].items() if name is kind)
    return MedFloat(_signed(raw, _MANTISSA_BITS[bits]), 0, bits)


def put(out: dict[str, object], key: str, value: MedFloat | None) -> None:
    """Write ``value`` under ``key`` as a number; a special value as ``null`` + ``key_special``."""
    if value is None:
        out[key] = None
        return
    out[key] = value.value
    if value.special is not None:
        out[f"{key}_special"] = value.special.value


def _signed(raw: int, bits: int) -> int:
    sign = 1 << (bits - 1)
    return (raw ^ sign) - sign
