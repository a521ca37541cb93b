"""Pulse Oximeter Service (0x1822): PLX Spot-Check (0x2A5E) and PLX Continuous (0x2A5F).

Per the Pulse Oximeter Service / Profile 1.0 and the GATT Specification Supplement:

Spot-Check: flags u8 (bit 0 timestamp, bit 1 measurement status, bit 2 device and sensor
status, bit 3 pulse amplitude index, bit 4 device clock not set); SpO2 SFLOAT %; PR SFLOAT bpm;
then, by flags, Date Time (7), measurement status u16, device and sensor status u24, PAI SFLOAT.

Continuous: flags u8 (bit 0 SpO2PR-Fast, bit 1 SpO2PR-Slow, bit 2 measurement status, bit 3
device and sensor status, bit 4 pulse amplitude index); SpO2PR-Normal (2 SFLOAT); then, by
flags, SpO2PR-Fast (2 SFLOAT), SpO2PR-Slow (2 SFLOAT), u16, u24, SFLOAT.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from drivers.gatt import ieee11073
from drivers.gatt.fields import DateTime, Reader, Writer

if TYPE_CHECKING:
    from drivers.gatt.ieee11073 import MedFloat

SPOT_CHECK = "plx_spot_check"
CONTINUOUS = "plx_continuous"


@dataclass(frozen=True, slots=True)
class PlxSpotCheck:
    """One spot-check measurement."""

    spo2_pct: MedFloat
    pulse_rate_bpm: MedFloat
    timestamp: DateTime | None = None
    measurement_status: int | None = None
    device_and_sensor_status: int | None = None
    pulse_amplitude_index: MedFloat | None = None
    device_clock_not_set: bool = False

    def to_json(self) -> dict[str, object]:
        """The JSON ``wgw decode`` prints and the gateway stores."""
        out: dict[str, object] = {}
        ieee11073.put(out, "spo2_pct", self.spo2_pct)
        ieee11073.put(out, "pulse_rate_bpm", self.pulse_rate_bpm)
        out["timestamp"] = self.timestamp.iso() if self.timestamp else None
        out["measurement_status"] = self.measurement_status
        out["device_and_sensor_status"] = self.device_and_sensor_status
        ieee11073.put(out, "pulse_amplitude_index", self.pulse_amplitude_index)
        out["device_clock_not_set"] = self.device_clock_not_set
        return out


@dataclass(frozen=True, slots=True)
class PlxContinuous:
    """One continuous measurement (normal, and optionally fast and slow averages)."""

    spo2_pct: MedFloat
    pulse_rate_bpm: MedFloat
    spo2_fast_pct: MedFloat | None = None
    pulse_rate_fast_bpm: MedFloat | None = None
    spo2_slow_pct: MedFloat | None = None
    pulse_rate_slow_bpm: MedFloat | None = None
    measurement_status: int | None = None
    device_and_sensor_status: int | None = None
    pulse_amplitude_index: MedFloat | None = None

    def to_json(self) -> dict[str, object]:
        """The JSON ``wgw decode`` prints and the gateway stores."""
        out: dict[str, object] = {}
        for key in (
            "spo2_pct",
            "pulse_rate_bpm",
            "spo2_fast_pct",
            "pulse_rate_fast_bpm",
            "spo2_slow_pct",
            "pulse_rate_slow_bpm",
        ):
            ieee11073.put(out, key, getattr(self, key))
        out["measurement_status"] = self.measurement_status
        out["device_and_sensor_status"] = self.device_and_sensor_status
        ieee11073.put(out, "pulse_amplitude_index", self.pulse_amplitude_index)
        return out


def decode_plx_spot_check(data: bytes | bytearray) -> PlxSpotCheck:
    """Decode one 0x2A5E payload; raises ``DecodeError`` only."""
    r = Reader(data, SPOT_CHECK)
    flags = r.u8("flags")
    spo2, pr = r.sfloat("SpO2"), r.sfloat("pulse rate")
    m = PlxSpotCheck(
        spo2,
        pr,
        timestamp=r.date_time("timestamp") if flags & 0x01 else None,
        measurement_status=r.u16("measurement status") if flags & 0x02 else None,
        device_and_sensor_status=r.u24("device and sensor status") if flags & 0x04 else None,
        pulse_amplitude_index=r.sfloat("pulse amplitude index") if flags & 0x08 else None,
        device_clock_not_set=bool(flags & 0x10),
    )
    r.done()
    return m


def encode_plx_spot_check(m: PlxSpotCheck) -> bytes:
    """Encode a spot-check measurement as a device would."""
    flags = (
        (m.timestamp is not None) * 0x01
        | (m.measurement_status is not None) * 0x02
        | (m.device_and_sensor_status is not None) * 0x04
        | (m.pulse_amplitude_index is not None) * 0x08
        | m.device_clock_not_set * 0x10
    )
    w = Writer().u8(flags).medfloat(m.spo2_pct).medfloat(m.pulse_rate_bpm)
    if m.timestamp is not None:
        w.date_time(m.timestamp)
    if m.measurement_status is not None:
        w.u16(m.measurement_status)
    if m.device_and_sensor_status is not None:
        w.u24(m.device_and_sensor_status)
    if m.pulse_amplitude_index is not None:
        w.medfloat(m.pulse_amplitude_index)
    return w.bytes()


def decode_plx_continuous(data: bytes | bytearray) -> PlxContinuous:
    """Decode one 0x2A5F payload; raises ``DecodeError`` only."""
    r = Reader(data, CONTINUOUS)
    flags = r.u8("flags")
    spo2, pr = r.sfloat("SpO2PR-Normal SpO2"), r.sfloat("SpO2PR-Normal PR")
    fast = (
        (r.sfloat("SpO2PR-Fast SpO2"), r.sfloat("SpO2PR-Fast PR")) if flags & 0x01 else (None, None)
    )
    slow = (
        (r.sfloat("SpO2PR-Slow SpO2"), r.sfloat("SpO2PR-Slow PR")) if flags & 0x02 else (None, None)
    )
    m = PlxContinuous(
        spo2,
        pr,
        spo2_fast_pct=fast[0],
        pulse_rate_fast_bpm=fast[1],
        spo2_slow_pct=slow[0],
        pulse_rate_slow_bpm=slow[1],
        measurement_status=r.u16("measurement status") if flags & 0x04 else None,
        device_and_sensor_status=r.u24("device and sensor status") if flags & 0x08 else None,
        pulse_amplitude_index=r.sfloat("pulse amplitude index") if flags & 0x10 else None,
    )
    r.done()
    return m


def encode_plx_continuous(m: PlxContinuous) -> bytes:
    """Encode a continuous measurement as a device would.

    Fast and slow pairs are sent when their SpO2 is set (a missing PR is sent as NaN).
    """
    nan = ieee11073.special(ieee11073.Special.NAN)
    flags = (
        (m.spo2_fast_pct is not None) * 0x01
        | (m.spo2_slow_pct is not None) * 0x02
        | (m.measurement_status is not None) * 0x04
        | (m.device_and_sensor_status is not None) * 0x08
        | (m.pulse_amplitude_index is not None) * 0x10
    )
    w = Writer().u8(flags).medfloat(m.spo2_pct).medfloat(m.pulse_rate_bpm)
    if m.spo2_fast_pct is not None:
        w.medfloat(m.spo2_fast_pct).medfloat(m.pulse_rate_fast_bpm or nan)
    if m.spo2_slow_pct is not None:
        w.medfloat(m.spo2_slow_pct).medfloat(m.pulse_rate_slow_bpm or nan)
    if m.measurement_status is not None:
        w.u16(m.measurement_status)
    if m.device_and_sensor_status is not None:
        w.u24(m.device_and_sensor_status)
    if m.pulse_amplitude_index is not None:
        w.medfloat(m.pulse_amplitude_index)
    return w.bytes()
