"""Tests for what each vitals reading becomes on LSL: channels, units and times."""

from __future__ import annotations

import pytest

from drivers.frames import VitalReading
from gateway.sinks.lsl_streams import VITALS, vital_samples, waveform_layout


def reading(stream: str, values: dict[str, object], t0_s: float = 100.0) -> VitalReading:
    return VitalReading("d", stream, 0, t0_s, values)


def test_rr_intervals_are_one_sample_a_beat_each_at_its_end() -> None:
    out = vital_samples(
        reading("heart_rate", {"heart_rate_bpm": 60, "rr_intervals_ms": [800.0, 1200.0]})
    )
    assert out["heart_rate"] == [(100.0, [60.0])]
    assert out["rr"] == [(pytest.approx(98.8), [800.0]), (100.0, [1200.0])]


def test_ppi_intervals_carry_interval_error_and_rate() -> None:
    interval = {"heart_rate_bpm": 70, "interval_ms": 857, "error_ms": 10, "blocker": False}
    out = vital_samples(reading("ppi", {"intervals": [interval]}))
    assert out == {"ppi": [(100.0, [857.0, 10.0, 70.0])]}
    assert len(VITALS["ppi"].labels) == 3


@pytest.mark.parametrize(
    ("stream", "values", "expected"),
    [
        ("spo2", {"spo2_pct": 97.0, "pulse_rate_bpm": 64.0}, {"spo2": [(100.0, [97.0, 64.0])]}),
        ("temperature", {"temperature": 98.6, "unit": "F"}, {"temperature": [(100.0, [37.0])]}),
        (
            "blood_pressure",
            {"systolic": 16.0, "diastolic": 10.0, "unit": "kPa"},
            {
                "blood_pressure": [
                    (100.0, [pytest.approx(120.0, abs=0.1), pytest.approx(75.0, abs=0.1)])
                ]
            },
        ),
        ("steps", {"steps": 1234}, {"steps": [(100.0, [1234.0])]}),
        ("heart_rate", {"heart_rate_bpm": None, "rr_intervals_ms": []}, {}),
        ("battery", {"battery_pct": 80}, {}),  # not a stream on LSL
    ],
)
def test_vitals_in_the_units_the_layouts_name(
    stream: str, values: dict[str, object], expected: dict[str, object]
) -> None:
    out = vital_samples(reading(stream, values))
    assert out == expected
    for name in out:
        assert VITALS[name].labels


def test_a_waveform_of_unknown_shape_gets_numbered_channels() -> None:
    assert waveform_layout("ecg", 1).unit == "microvolts"
    assert waveform_layout("ecg", 3).labels == ("I", "II", "III")  # a 3-lead patch
    assert waveform_layout("ecg", 2).labels == ("ecg0", "ecg1")
    assert waveform_layout("ppg", 4).labels == ("PPG0", "PPG1", "PPG2", "ambient")
