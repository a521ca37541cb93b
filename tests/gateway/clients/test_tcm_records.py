"""Health records per interval: means and latest values, open intervals held, stragglers kept."""

from __future__ import annotations

import json

from buffers.records import OutboxRecord, StoredRecord
from gateway.clients.tcm_records import build

T0 = 1_800_000_000.0  # a minute boundary


def row(i: int, stream: str, t: float, values: dict[str, object]) -> StoredRecord:
    return StoredRecord(i, OutboxRecord("vital", "w1", stream, i, t, json.dumps(values).encode()))


def test_one_record_per_closed_minute_with_means_and_latest_values() -> None:
    """Test mean heart rate and SpO2, latest pressure and temperature, the minute's start."""
    rows = [
        row(1, "heart_rate", T0 + 1, {"heart_rate_bpm": 60}),
        row(2, "heart_rate", T0 + 2, {"heart_rate_bpm": 70}),
        row(3, "spo2", T0 + 3, {"spo2_pct": 96.0, "pulse_rate_bpm": 65.0}),
        row(4, "blood_pressure", T0 + 4, {"systolic": 120.0, "diastolic": 80.0, "unit": "mmHg"}),
        row(5, "blood_pressure", T0 + 50, {"systolic": 16.0, "diastolic": 10.0, "unit": "kPa"}),
        row(6, "temperature", T0 + 5, {"temperature": 98.6, "unit": "F"}),
        row(7, "heart_rate", T0 + 61, {"heart_rate_bpm": 90}),  # the next minute: still open
    ]
    ready = build(rows, interval_s=60, now_s=T0 + 66, grace_s=5, uploaded_until_s=0)
    (record,) = ready.records
    assert record["timestamp"] == "2027-01-15T08:00:00.000000Z"
    assert (
        record["heart_rate"] == 65.0
    )  # heart_rate rows only: the oximeter's pulse is not mixed in
    assert record["blood_oxygen"] == 96.0
    assert record["blood_pressure"] == {"systolic": 120.0, "diastolic": 75.0}  # 16/10 kPa in mmHg
    assert record["temperature"] == 37.0
    assert record["steps"] is None
    assert ready.row_ids == [1, 2, 3, 4, 5, 6]
    assert ready.held_ids == [7]
    assert ready.closed_until_s == T0 + 60


def test_open_minutes_are_held_and_say_how_long() -> None:
    """Test nothing ready before the minute plus grace is over, and the wait until then."""
    rows = [row(1, "heart_rate", T0 + 10, {"heart_rate_bpm": 60})]
    ready = build(rows, interval_s=60, now_s=T0 + 30, grace_s=5, uploaded_until_s=0)
    assert (ready.records, ready.held_ids) == ([], [1])
    assert ready.wait_s == 35


def test_a_straggler_gets_a_record_of_its_own() -> None:
    """Test a reading for an already uploaded minute: its own timestamp, not a duplicate."""
    rows = [row(9, "heart_rate", T0 + 30, {"heart_rate_bpm": 77})]
    ready = build(rows, interval_s=60, now_s=T0 + 200, grace_s=5, uploaded_until_s=T0 + 60)
    assert [r["timestamp"] for r in ready.records] == ["2027-01-15T08:00:30.000000Z"]
    assert ready.records[0]["heart_rate"] == 77


def test_interval_zero_is_a_record_per_reading() -> None:
    """Test the per-reading mode."""
    rows = [row(i, "heart_rate", T0 + i, {"heart_rate_bpm": 60 + i}) for i in range(3)]
    ready = build(rows, interval_s=0, now_s=T0, grace_s=5, uploaded_until_s=0)
    assert [r["heart_rate"] for r in ready.records] == [60, 61, 62]


def test_a_batch_cut_mid_interval_leaves_that_interval_for_the_next_batch() -> None:
    """Test that the newest interval of a truncated batch is held, not split into two records."""
    rows = [
        row(i, "heart_rate", T0 + 30 * i, {"heart_rate_bpm": 60}) for i in range(4)
    ]  # 2 minutes
    ready = build(
        rows, interval_s=60, now_s=T0 + 500, grace_s=5, uploaded_until_s=0, truncated=True
    )
    assert [r["timestamp"] for r in ready.records] == ["2027-01-15T08:00:00.000000Z"]
    assert ready.held_ids == [2, 3]
    assert ready.closed_until_s == T0 + 60


def ppi(i: int, t: float, *rates: int) -> StoredRecord:
    intervals = [{"heart_rate_bpm": r, "interval_ms": 1000, "error_ms": 10} for r in rates]
    return row(i, "ppi", t, {"intervals": intervals})


def test_ppi_gives_the_heart_rate_where_no_heart_rate_came() -> None:
    """Test a Verity Sense streaming PPI alone: the record's heart rate is its intervals' mean
    (the record has no field for the intervals themselves); beside a heart rate stream, the
    heart rate stream's; an interval without a rate (0) is left out."""
    alone = [ppi(1, T0 + 10, 60, 62), ppi(2, T0 + 20, 64, 0)]
    (record,) = build(alone, interval_s=60, now_s=T0 + 66, grace_s=5, uploaded_until_s=0).records
    assert record["heart_rate"] == 62.5  # the readings' 61 and 64
    both = [*alone, row(3, "heart_rate", T0 + 30, {"heart_rate_bpm": 70})]
    (record,) = build(both, interval_s=60, now_s=T0 + 66, grace_s=5, uploaded_until_s=0).records
    assert record["heart_rate"] == 70.0
    (one,) = build(alone[:1], interval_s=0, now_s=T0 + 66, grace_s=5, uploaded_until_s=0).records
    assert one["heart_rate"] == 61.0


def test_a_watchs_step_count_goes_in_as_its_latest_in_the_interval() -> None:
    """Test InfiniTime's step count (the watch's count since midnight): the minute's record
    carries the latest one, whatever order the rows came in."""
    rows = [
        row(1, "steps", T0 + 40, {"steps": 1210}),
        row(2, "steps", T0 + 10, {"steps": 1180}),
        row(3, "heart_rate", T0 + 20, {"heart_rate_bpm": 80}),
    ]
    ready = build(rows, interval_s=60, now_s=T0 + 66, grace_s=5, uploaded_until_s=0)
    (record,) = ready.records
    assert (record["steps"], record["heart_rate"]) == (1210, 80.0)
