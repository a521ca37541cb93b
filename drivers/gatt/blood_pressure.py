"""Blood Pressure Measurement (0x2A35), per the Blood Pressure Service 1.1.

Flags u8 (bit 0 unit kPa, else mmHg; bit 1 time stamp; bit 2 pulse rate; bit 3 user id; bit 4
measurement status); systolic, diastolic and mean arterial pressure as SFLOAT; then, by flags,
Date Time (7), pulse rate SFLOAT, user id u8 (255 = unknown user), measurement status u16.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from drivers.gatt import ieee11073
from drivers.gatt.fields import DateTime, Reader, Writer

if TYPE_CHECKING:
    from drivers.gatt.ieee11073 import MedFloat

PROFILE = "blood_pressure_measurement"

_PULSE_RATE_RANGE = ("in_range", "above_upper_limit", "below_lower_limit", "reserved")


@dataclass(frozen=True, slots=True)
class BloodPressureMeasurement:
    """One cuff measurement."""

    systolic: MedFloat
    diastolic: MedFloat
    mean_arterial_pressure: MedFloat
    unit: Literal["mmHg", "kPa"] = "mmHg"
    timestamp: DateTime | None = None
    pulse_rate_bpm: MedFloat | None = None
    user_id: int | None = None
    measurement_status: int | None = None

    def to_json(self) -> dict[str, object]:
        """The JSON ``wgw decode`` prints and the gateway stores."""
        out: dict[str, object] = {}
        ieee11073.put(out, "systolic", self.systolic)
        ieee11073.put(out, "diastolic", self.diastolic)
        ieee11073.put(out, "mean_arterial_pressure", self.mean_arterial_pressure)
        out["unit"] = self.unit
        out["timestamp"] = self.timestamp.iso() if self.timestamp else None
        ieee11073.put(out, "pulse_rate_bpm", self.pulse_rate_bpm)
        out["user_id"] = self.user_id
        out["measurement_status"] = _status(self.measurement_status)
        return out


def decode_blood_pressure_measurement(data: bytes | bytearray) -> BloodPressureMeasurement:
    """Decode one 0x2A35 payload; raises ``DecodeError`` only."""
    r = Reader(data, PROFILE)
    flags = r.u8("flags")
    systolic, diastolic, mean = r.sfloat("systolic"), r.sfloat("diastolic"), r.sfloat("MAP")
    m = BloodPressureMeasurement(
        systolic,
        diastolic,
        mean,
        unit="kPa" if flags & 0x01 else "mmHg",
        timestamp=r.date_time("time stamp") if flags & 0x02 else None,
        pulse_rate_bpm=r.sfloat("pulse rate") if flags & 0x04 else None,
        user_id=r.u8("user id") if flags & 0x08 else None,
        measurement_status=r.u16("measurement status") if flags & 0x10 else None,
    )
    r.done()
    return m


def encode_blood_pressure_measurement(m: BloodPressureMeasurement) -> bytes:
    """Encode a measurement as a cuff would."""
    flags = (
        (m.unit == "kPa") * 0x01
        | (m.timestamp is not None) * 0x02
        | (m.pulse_rate_bpm is not None) * 0x04
        | (m.user_id is not None) * 0x08
        | (m.measurement_status is not None) * 0x10
    )
    w = Writer().u8(flags)
    w.medfloat(m.systolic).medfloat(m.diastolic).medfloat(m.mean_arterial_pressure)
    if m.timestamp is not None:
        w.date_time(m.timestamp)
    if m.pulse_rate_bpm is not None:
        w.medfloat(m.pulse_rate_bpm)
    if m.user_id is not None:
        w.u8(m.user_id)
    if m.measurement_status is not None:
        w.u16(m.measurement_status)
    return w.bytes()


def _status(bits: int | None) -> dict[str, object] | None:
    if bits is None:
        return None
    return {
        "body_movement": bool(bits & 0x01),
        "cuff_too_loose": bool(bits & 0x02),
        "irregular_pulse": bool(bits & 0x04),
        "pulse_rate_range": _PULSE_RATE_RANGE[(bits >> 3) & 0x03],
        "improper_position": bool(bits & 0x20),
    }
