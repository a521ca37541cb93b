"""PLX, blood pressure, temperature, battery and device information decoders.

Vectors are built field by field from the profile specifications' tables (the SIG publishes
no test vectors for these); the thermometer vectors are Polar's (BleHtsClientTest.kt).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.errors import DecodeError
from drivers.gatt.battery import decode_battery_level, encode_battery_level
from drivers.gatt.blood_pressure import (
    BloodPressureMeasurement,
    decode_blood_pressure_measurement,
    encode_blood_pressure_measurement,
)
from drivers.gatt.bp_record import (
    BloodPressureRecord,
    decode_blood_pressure_record,
    encode_blood_pressure_record,
)
from drivers.gatt.current_time import CurrentTime, decode_current_time, encode_current_time
from drivers.gatt.device_information import decode_device_information_string
from drivers.gatt.fields import DateTime
from drivers.gatt.plx import (
    PlxContinuous,
    PlxSpotCheck,
    decode_plx_continuous,
    decode_plx_spot_check,
    encode_plx_continuous,
    encode_plx_spot_check,
)
from drivers.gatt.temperature import (
    TemperatureMeasurement,
    decode_temperature_measurement,
    encode_temperature_measurement,
)
from tests.drivers.gatt.strategies import date_times, medfloats

if TYPE_CHECKING:
    from collections.abc import Callable


def test_plx_spot_check_with_every_field() -> None:
    """Test a spot-check with timestamp, both status fields and PAI (PLXS 1.0, 3.1)."""
    # flags 0x1F; SpO2 97 (0x0061); PR 64 (0x0040); 2026-11-22 10:30:05; status 0x0020;
    # device and sensor status 0x000100; PAI 2.5 (0xF019); device clock not set
    data = bytes.fromhex("1f61004000ea070b160a1e05200000010019f0")
    out = decode_plx_spot_check(data).to_json()
    assert out == {
        "spo2_pct": 97.0,
        "pulse_rate_bpm": 64.0,
        "timestamp": "2026-11-22T10:30:05",
        "measurement_status": 0x20,
        "device_and_sensor_status": 0x100,
        "pulse_amplitude_index": 2.5,
        "device_clock_not_set": True,
    }


def test_plx_continuous_with_special_pulse_rate() -> None:
    """Test a continuous measurement with fast and slow pairs and an NaN pulse rate."""
    # flags 0x03; normal (98, NaN); fast (97, 70); slow (96, 71)
    data = bytes.fromhex("036200ff076100460060004700")
    out = decode_plx_continuous(data).to_json()
    assert out["spo2_pct"] == 98.0
    assert out["pulse_rate_bpm"] is None and out["pulse_rate_bpm_special"] == "NaN"
    assert (out["spo2_fast_pct"], out["pulse_rate_slow_bpm"]) == (97.0, 71.0)
    assert out["measurement_status"] is None


def test_blood_pressure_in_kpa_with_every_field() -> None:
    """Test kPa, timestamp, pulse rate, user id and status bits (BLS 1.1, 3.1)."""
    # flags 0x1F; 16.0 / 10.7 / 12.4 kPa as 160e-1, 107e-1, 124e-1; 2026-11-22 07:00:00;
    # PR 58; user 2; status 0x000D: body movement, irregular pulse, above upper limit
    data = bytes.fromhex("1fa0f06bf07cf0ea070b160700003a00020d00")
    out = decode_blood_pressure_measurement(data).to_json()
    assert (out["systolic"], out["diastolic"], out["mean_arterial_pressure"]) == (16.0, 10.7, 12.4)
    assert out["unit"] == "kPa"
    assert out["timestamp"] == "2026-11-22T07:00:00"
    assert (out["pulse_rate_bpm"], out["user_id"]) == (58.0, 2)
    assert out["measurement_status"] == {
        "body_movement": True,
        "cuff_too_loose": False,
        "irregular_pulse": True,
        "pulse_rate_range": "above_upper_limit",
        "improper_position": False,
    }


@pytest.mark.parametrize(("data", "celsius"), [("00a00a00fe", 27.20), ("00a10a00fe", 27.21)])
def test_polar_thermometer_vectors(data: str, celsius: float) -> None:
    """Test Polar's Health Thermometer vectors (polar-ble-sdk BleHtsClientTest.kt)."""
    m = decode_temperature_measurement(bytes.fromhex(data))
    assert m.temperature.value == pytest.approx(celsius)
    assert m.unit == "C"


def test_temperature_in_fahrenheit_with_type() -> None:
    """Test Fahrenheit, a timestamp and the type 'ear' (HTS 1.0, 3.1)."""
    data = bytes.fromhex("07d90300ffea070b1617000003")
    assert decode_temperature_measurement(data).to_json() == {
        "temperature": 98.5,
        "unit": "F",
        "timestamp": "2026-11-22T23:00:00",
        "temperature_type": "ear",
    }


def test_battery_and_device_information() -> None:
    """Test battery level bounds and NUL-padded UTF-8 strings."""
    assert decode_battery_level(b"\x57") == 87
    with pytest.raises(DecodeError, match="above 100"):
        decode_battery_level(b"\x65")
    assert decode_device_information_string(b"Polar Electro Oy\x00\x00") == "Polar Electro Oy"
    with pytest.raises(DecodeError, match="UTF-8"):
        decode_device_information_string(b"\xff\xfe")


@pytest.mark.parametrize(
    ("decode", "data", "reason"),
    [
        (decode_plx_spot_check, "", "empty"),
        (decode_plx_spot_check, "016100", "pulse rate"),
        (decode_plx_spot_check, "0161004000ea07", "timestamp"),
        (decode_plx_continuous, "0462004600", "measurement status"),
        (decode_blood_pressure_measurement, "02780050005d00", "time stamp"),
        (decode_blood_pressure_measurement, "00780050005d00ff", "trailing"),
        (decode_blood_pressure_measurement, "02780050005d00ea070d01000000", "month"),
        (decode_blood_pressure_record, "0107003523", "segmented"),
        (decode_blood_pressure_record, "030700372a00780050005d00", "not 0x2A35"),
        (decode_blood_pressure_record, "030700352a00780050005d00ff", "trailing"),
        (decode_temperature_measurement, "00a00a00", "temperature"),
        (decode_temperature_measurement, "02a00a00feea070b16180000", "time of day"),
    ],
)
def test_malformed_payloads_name_the_problem(
    decode: Callable[[bytes], object], data: str, reason: str
) -> None:
    """Test that flags announcing absent fields, truncation and bad dates raise DecodeError."""
    with pytest.raises(DecodeError, match=reason):
        decode(bytes.fromhex(data))


optional_status = st.none() | st.integers(0, 0xFFFF)
spot_checks = st.builds(
    PlxSpotCheck,
    medfloats(),
    medfloats(),
    st.none() | date_times,
    optional_status,
    st.none() | st.integers(0, 0xFFFFFF),
    st.none() | medfloats(),
    st.booleans(),
)
pairs = st.one_of(st.tuples(st.none(), st.none()), st.tuples(medfloats(), medfloats()))
continuous = st.builds(
    lambda n, fast, slow, ms, ds, pai: PlxContinuous(
        n[0], n[1], fast[0], fast[1], slow[0], slow[1], ms, ds, pai
    ),
    st.tuples(medfloats(), medfloats()),
    pairs,
    pairs,
    optional_status,
    st.none() | st.integers(0, 0xFFFFFF),
    st.none() | medfloats(),
)
pressures = st.builds(
    BloodPressureMeasurement,
    medfloats(),
    medfloats(),
    medfloats(),
    st.sampled_from(["mmHg", "kPa"]),
    st.none() | date_times,
    st.none() | medfloats(),
    st.none() | st.integers(0, 255),
    optional_status,
)
bp_records = st.builds(BloodPressureRecord, st.integers(0, 0xFFFF), pressures)
current_times = st.builds(
    CurrentTime,
    date_times,
    st.integers(0, 7),
    st.integers(0, 255),
    st.integers(0, 255),
)
temperatures = st.builds(
    TemperatureMeasurement,
    medfloats(32),
    st.sampled_from(["C", "F"]),
    st.none() | date_times,
    st.none() | st.integers(0, 255),
)

ROUND_TRIPS: list[tuple[st.SearchStrategy[Any], Callable[[Any], bytes], Callable[[bytes], Any]]] = [
    (spot_checks, encode_plx_spot_check, decode_plx_spot_check),
    (continuous, encode_plx_continuous, decode_plx_continuous),
    (pressures, encode_blood_pressure_measurement, decode_blood_pressure_measurement),
    (bp_records, encode_blood_pressure_record, decode_blood_pressure_record),
    (temperatures, encode_temperature_measurement, decode_temperature_measurement),
    (st.integers(0, 100), encode_battery_level, decode_battery_level),
    (current_times, encode_current_time, decode_current_time),
]


@pytest.mark.parametrize(("strategy", "encode", "decode"), ROUND_TRIPS)
def test_round_trips(
    strategy: st.SearchStrategy[Any], encode: Callable[[Any], bytes], decode: Callable[[bytes], Any]
) -> None:
    """Test decode(encode(m)) == m for every valid measurement of every profile."""

    @given(strategy)
    def check(m: Any) -> None:
        assert decode(encode(m)) == m

    check()


DECODERS = [
    decode_plx_spot_check,
    decode_plx_continuous,
    decode_blood_pressure_measurement,
    decode_blood_pressure_record,
    decode_temperature_measurement,
    decode_battery_level,
    decode_device_information_string,
    decode_current_time,
]


@pytest.mark.parametrize("decode", DECODERS)
def test_random_bytes_raise_nothing_but_decode_error(decode: Callable[[bytes], object]) -> None:
    """Test that arbitrary bytes either decode or raise DecodeError, for every decoder."""

    @given(st.binary(max_size=40))
    def check(data: bytes) -> None:
        with contextlib.suppress(DecodeError):
            decode(data)

    check()


def test_current_time_places_the_device_clock() -> None:
    """Test a Current Time from the CTS table's layout: 2026-11-23 04:05:06 and 128/256 s."""
    data = bytes.fromhex("ea070b17040506" + "01" + "80" + "00")
    value = decode_current_time(data)
    assert value == CurrentTime(DateTime(2026, 11, 23, 4, 5, 6), 1, 128, 0)
    assert value.epoch_s() == 1795406706.5
    assert CurrentTime(DateTime(0, 0, 0, 0, 0, 0)).epoch_s() is None
    assert CurrentTime(DateTime(2026, 2, 31, 0, 0, 0)).epoch_s() is None  # no such day
    with pytest.raises(DecodeError, match="day of week 8"):
        decode_current_time(bytes.fromhex("ea070b17040506" + "08" + "00" + "00"))
