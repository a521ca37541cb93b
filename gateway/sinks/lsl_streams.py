"""Each gateway stream as a Lab Streaming Layer stream: its type, channels, units and samples.

Waveforms keep their integers (``int32`` channels) at their nominal rate; vitals are
irregular-rate ``float32`` streams, one sample a reading; RR and PPI intervals are one sample
an interval, each at the time its beat ended (the reading's time, earlier ones before it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from gateway import units

if TYPE_CHECKING:
    from collections.abc import Callable

    from drivers.frames import VitalReading

Samples = list[tuple[float, list[float]]]  # (UTC time, channel values)


@dataclass(frozen=True, slots=True)
class Layout:
    """An LSL stream's shape: type (XDF's and LabRecorder's), channel labels, their unit."""

    lsl_type: str
    labels: tuple[str, ...]
    unit: str


WAVEFORMS: Final = {
    "ecg": Layout("ECG", ("ECG",), "microvolts"),
    "ppg": Layout("PPG", ("PPG0", "PPG1", "PPG2", "ambient"), "counts"),
    "acc": Layout("Accelerometer", ("X", "Y", "Z"), "milli-g"),
    "gyro": Layout("Gyroscope", ("X", "Y", "Z"), "millidegrees/s"),
    "mag": Layout("Magnetometer", ("X", "Y", "Z"), "nanotesla"),
}

_LEADS: Final = ("I", "II", "III")

VITALS: Final = {
    "heart_rate": Layout("HeartRate", ("heart_rate",), "bpm"),
    "rr": Layout("RR", ("rr_interval",), "ms"),
    "ppi": Layout("PPI", ("ppi", "error_estimate", "heart_rate"), "ms"),
    "spo2": Layout("SpO2", ("spo2", "pulse_rate"), "percent"),
    "spo2_spot": Layout("SpO2", ("spo2", "pulse_rate"), "percent"),
    "temperature": Layout("Temperature", ("temperature",), "degrees C"),
    "blood_pressure": Layout("BloodPressure", ("systolic", "diastolic"), "mmHg"),
    "steps": Layout("Steps", ("steps",), "steps"),
    "motion": Layout("Accelerometer", ("X", "Y", "Z"), "raw"),
}


def waveform_layout(stream: str, channels: int) -> Layout:
    """A waveform's layout (a stream or channel count not in the table: numbered, raw units)."""
    known = WAVEFORMS.get(stream)
    if known is not None and len(known.labels) == channels:
        return known
    if stream == "ecg" and channels == len(_LEADS):  # a 3-lead patch: limb leads I, II, III
        return Layout("ECG", _LEADS, "microvolts")
    return Layout(stream.upper(), tuple(f"{stream}{i}" for i in range(channels)), "raw")


def vital_samples(reading: VitalReading) -> dict[str, Samples]:
    """The LSL samples one reading gives, by LSL stream (its gateway stream, or ``rr``).

    A value the reading lacks gives no sample.
    """
    extract = _EXTRACTORS.get(reading.stream)
    if extract is None:
        return {}
    return {stream: samples for stream, samples in extract(reading).items() if samples}


def _number(values: dict[str, object], key: str) -> float | None:
    value = values.get(key)
    return float(value) if isinstance(value, int | float) else None


def _numbers(reading: VitalReading, stream: str, *keys: str) -> dict[str, Samples]:
    found = [_number(reading.values, k) for k in keys]
    if any(x is None for x in found):
        return {}
    return {stream: [(reading.t0_s, [x for x in found if x is not None])]}


def _heart_rate(reading: VitalReading) -> dict[str, Samples]:
    rr = [
        float(x) for x in _list(reading.values.get("rr_intervals_ms")) if isinstance(x, int | float)
    ]
    return {
        **_numbers(reading, "heart_rate", "heart_rate_bpm"),
        "rr": _intervals(reading.t0_s, [[x] for x in rr], rr),
    }


def _ppi(reading: VitalReading) -> dict[str, Samples]:
    rows = [
        [_number(i, k) or 0.0 for k in ("interval_ms", "error_ms", "heart_rate_bpm")]
        for i in _list(reading.values.get("intervals"))
        if isinstance(i, dict)
    ]
    return {"ppi": _intervals(reading.t0_s, rows, [r[0] for r in rows])}


def _spo2(reading: VitalReading) -> dict[str, Samples]:
    spo2, pulse = _number(reading.values, "spo2_pct"), _number(reading.values, "pulse_rate_bpm")
    if spo2 is None:
        return {}
    return {reading.stream: [(reading.t0_s, [spo2, float("nan") if pulse is None else pulse])]}


def _temperature(reading: VitalReading) -> dict[str, Samples]:
    celsius = units.temperature_c(reading.values)
    return {} if celsius is None else {"temperature": [(reading.t0_s, [celsius])]}


def _blood_pressure(reading: VitalReading) -> dict[str, Samples]:
    mmhg = units.pressure_mmhg(reading.values)
    return {} if mmhg is None else {"blood_pressure": [(reading.t0_s, [mmhg[0], mmhg[1]])]}


_EXTRACTORS: Final[dict[str, Callable[[VitalReading], dict[str, Samples]]]] = {
    "heart_rate": _heart_rate,
    "ppi": _ppi,
    "spo2": _spo2,
    "spo2_spot": _spo2,
    "temperature": _temperature,
    "blood_pressure": _blood_pressure,
    "steps": lambda r: _numbers(r, "steps", "steps"),
    "motion": lambda r: _numbers(r, "motion", "x", "y", "z"),
}


def _list(value: object) -> list[object]:
    return list(value) if isinstance(value, list | tuple) else []


def _intervals(end_s: float, rows: list[list[float]], durations_ms: list[float]) -> Samples:
    """Intervals that ended one after the other, the last at ``end_s``: each at its end."""
    out = []
    t = end_s
    for row, duration in zip(reversed(rows), reversed(durations_ms), strict=True):
        out.append((t, row))
        t -= duration / 1000.0
    return out[::-1]
