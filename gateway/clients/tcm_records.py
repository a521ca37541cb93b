"""The TCM API's health records (the "AI-33 Medical Watch" format of API.md) from vitals rows.

``health_record``: one reading as one record. ``build``: one record per device and interval.
A record covers ``[start, start + interval)``: mean heart rate, latest blood pressure, mean SpO2,
latest temperature (API.md's fields; nobody measured -> ``null``); its timestamp is the
interval's start. An interval is uploaded once it has closed (its end plus a grace for
readings still in flight); a reading that arrives after its interval was uploaded gets a record
of its own, stamped with its own time, so the server's de-duplication on (device, timestamp)
cannot swallow it. ``interval_s`` 0 makes one record per reading.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from drivers.frames import VitalReading
from gateway import units
from gateway.codec import iso_utc, reading_of

if TYPE_CHECKING:
    from collections.abc import Sequence

    from buffers.records import StoredRecord
    from gateway.readings import Reading


def health_record(reading: Reading) -> dict[str, object]:
    """One vitals reading as a health record.

    Fields the reading did not measure are ``null``; pressure goes in mmHg and temperature in
    degrees C whatever unit the device used.
    """
    frame = reading.frame
    assert isinstance(frame, VitalReading)
    values = frame.values
    out: dict[str, object] = {
        "timestamp": iso_utc(frame.t0_s),
        "heart_rate": None,
        "blood_pressure": None,
        "blood_oxygen": None,
        "temperature": None,
        "stress_level": None,
        "sleep_hours": None,
        "steps": None,
        "calories": None,
        **reading.labels.as_json(),
    }
    if frame.stream == "heart_rate":
        out["heart_rate"] = values.get("heart_rate_bpm")
    elif frame.stream in ("spo2", "spo2_spot"):
        out["blood_oxygen"] = values.get("spo2_pct")
        out["heart_rate"] = values.get("pulse_rate_bpm")
    elif frame.stream == "blood_pressure":
        pressure = units.pressure_mmhg(values)
        if pressure is not None:
            out["blood_pressure"] = {"systolic": pressure[0], "diastolic": pressure[1]}
    elif frame.stream == "temperature":
        out["temperature"] = units.temperature_c(values)
    elif frame.stream == "steps":  # the watch's count since midnight, as it said it last
        out["steps"] = values.get("steps")
    elif frame.stream == "ppi":  # the record has no field for intervals: their heart rate
        out["heart_rate"] = ppi_heart_rate(values)
    return out


def ppi_heart_rate(values: dict[str, object]) -> float | None:
    """The mean heart rate of a PPI reading's intervals (None: none gave one)."""
    intervals = values.get("intervals")
    rates = [
        float(i["heart_rate_bpm"])
        for i in (intervals if isinstance(intervals, list) else [])
        if isinstance(i, dict)
        and isinstance(i.get("heart_rate_bpm"), int | float)
        and i["heart_rate_bpm"] > 0
    ]
    return round(sum(rates) / len(rates), 1) if rates else None


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 1) if values else None


@dataclass(slots=True)
class Bucket:
    """The readings of one device in one interval."""

    start_s: float
    ids: list[int] = field(default_factory=list)
    heart_rates: list[float] = field(default_factory=list)
    ppi_rates: list[float] = field(default_factory=list)  # used where no heart rate came
    spo2: list[float] = field(default_factory=list)
    pressure: tuple[float, object] | None = None  # (time, value), the latest wins
    temperature: tuple[float, object] | None = None
    steps: tuple[float, object] | None = None
    labels: dict[str, object] = field(default_factory=dict)  # the first reading's study labels

    def add(self, row: StoredRecord) -> None:
        """Take one vitals row into the interval."""
        reading = reading_of(row.record)
        fields = health_record(reading)
        t = row.record.t0_s
        self.ids.append(row.id)
        if not self.labels:
            self.labels = reading.labels.as_json()
        if row.record.stream == "heart_rate" and isinstance(fields["heart_rate"], int | float):
            self.heart_rates.append(float(fields["heart_rate"]))
        if row.record.stream == "ppi" and isinstance(fields["heart_rate"], int | float):
            self.ppi_rates.append(float(fields["heart_rate"]))
        if isinstance(fields["blood_oxygen"], int | float):
            self.spo2.append(float(fields["blood_oxygen"]))
        if fields["blood_pressure"] is not None and (
            self.pressure is None or t >= self.pressure[0]
        ):
            self.pressure = (t, fields["blood_pressure"])
        if fields["temperature"] is not None and (
            self.temperature is None or t >= self.temperature[0]
        ):
            self.temperature = (t, fields["temperature"])
        if fields["steps"] is not None and (self.steps is None or t >= self.steps[0]):
            self.steps = (t, fields["steps"])

    def record(self, timestamp_s: float) -> dict[str, object]:
        """The interval as one AI-33 record."""
        return {
            "timestamp": iso_utc(timestamp_s),
            "heart_rate": _mean(self.heart_rates or self.ppi_rates),
            "blood_pressure": self.pressure[1] if self.pressure else None,
            "blood_oxygen": round(sum(self.spo2) / len(self.spo2), 1) if self.spo2 else None,
            "temperature": self.temperature[1] if self.temperature else None,
            "stress_level": None,
            "sleep_hours": None,
            "steps": self.steps[1] if self.steps else None,
            "calories": None,
            **self.labels,
        }


@dataclass(frozen=True, slots=True)
class Ready:
    """Records ready to upload for one device, and the rows they came from."""

    records: list[dict[str, object]]
    row_ids: list[int]
    held_ids: list[int]  # rows of intervals still open: give them back
    closed_until_s: float  # the end of the newest interval these records close
    wait_s: float  # when nothing is ready: until the oldest open interval closes


def build(
    rows: Sequence[StoredRecord],
    *,
    interval_s: float,
    now_s: float,
    grace_s: float,
    uploaded_until_s: float,
    truncated: bool = False,
) -> Ready:
    """Records for the closed intervals of ``rows`` (one device's rows, oldest first).

    ``truncated``: ``rows`` was cut at the batch size, so its newest interval may continue in
    rows not read yet; that interval waits for the next batch unless it is the only one.
    """
    if interval_s <= 0:
        return Ready(
            [health_record(reading_of(r.record)) for r in rows],
            [r.id for r in rows],
            [],
            uploaded_until_s,
            0.0,
        )
    buckets: dict[float, Bucket] = {}
    stragglers: list[tuple[StoredRecord, dict[str, object]]] = []
    held: list[int] = []
    for row in rows:
        start = math.floor(row.record.t0_s / interval_s) * interval_s
        if start < uploaded_until_s:  # its interval is gone already: a record of its own
            stragglers.append((row, health_record(reading_of(row.record))))
        elif start + interval_s + grace_s > now_s:
            held.append(row.id)
        else:
            buckets.setdefault(start, Bucket(start)).add(row)
    if truncated and len(buckets) > 1:
        held.extend(buckets.pop(max(buckets)).ids)
    records = [record for _, record in stragglers]
    ids = [row.id for row, _ in stragglers]
    for start in sorted(buckets):
        records.append(buckets[start].record(start))
        ids.extend(buckets[start].ids)
    closed = max((start + interval_s for start in buckets), default=uploaded_until_s)
    held_set = set(held)
    opens = [math.floor(r.record.t0_s / interval_s) * interval_s for r in rows if r.id in held_set]
    wait_s = max(0.0, min(opens, default=now_s) + interval_s + grace_s - now_s) if held else 0.0
    return Ready(records, ids, held, max(closed, uploaded_until_s), wait_s)
