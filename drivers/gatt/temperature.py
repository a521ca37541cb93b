"""Temperature Measurement (0x2A1C), per the Health Thermometer Service 1.0.

Flags u8 (bit 0 Fahrenheit, else Celsius; bit 1 time stamp; bit 2 temperature type); the
temperature as a 32-bit FLOAT; then, by flags, Date Time (7) and the type u8 (0x2A1D's values).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from drivers.gatt import ieee11073
from drivers.gatt.fields import DateTime, Reader, Writer

if TYPE_CHECKING:
    from drivers.gatt.ieee11073 import MedFloat

PROFILE = "temperature_measurement"

# Temperature Type (0x2A1D), GATT Specification Supplement
TEMPERATURE_TYPES = {
    1: "armpit",
    2: "body",
    3: "ear",
    4: "finger",
    5: "gastrointestinal_tract",
    6: "mouth",
    7: "rectum",
    8: "toe",
    9: "tympanum",
}


@dataclass(frozen=True, slots=True)
class TemperatureMeasurement:
    """One thermometer reading."""

    temperature: MedFloat
    unit: Literal["C", "F"] = "C"
    timestamp: DateTime | None = None
    temperature_type: int | None = None

    def to_json(self) -> dict[str, object]:
        """The JSON ``wgw decode`` prints and the gateway stores."""
        out: dict[str, object] = {}
        ieee11073.put(out, "temperature", self.temperature)
        out["unit"] = self.unit
        out["timestamp"] = self.timestamp.iso() if self.timestamp else None
        kind = self.temperature_type
        out["temperature_type"] = (
            None if kind is None else TEMPERATURE_TYPES.get(kind, f"reserved_{kind}")
        )
        return out


def decode_temperature_measurement(data: bytes | bytearray) -> TemperatureMeasurement:
    """Decode one 0x2A1C payload; raises ``DecodeError`` only."""
    r = Reader(data, PROFILE)
    flags = r.u8("flags")
    m = TemperatureMeasurement(
        r.float32("temperature"),
        unit="F" if flags & 0x01 else "C",
        timestamp=r.date_time("time stamp") if flags & 0x02 else None,
        temperature_type=r.u8("temperature type") if flags & 0x04 else None,
    )
    r.done()
    return m


def encode_temperature_measurement(m: TemperatureMeasurement) -> bytes:
    """Encode a reading as a thermometer would."""
    flags = (
        (m.unit == "F") * 0x01
        | (m.timestamp is not None) * 0x02
        | (m.temperature_type is not None) * 0x04
    )
    w = Writer().u8(flags).medfloat(m.temperature)
    if m.timestamp is not None:
        w.date_time(m.timestamp)
    if m.temperature_type is not None:
        w.u8(m.temperature_type)
    return w.bytes()
