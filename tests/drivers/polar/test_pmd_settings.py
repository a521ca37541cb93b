"""Tests for PMD's offers: the feature read, settings lists, the nearest offered settings, and
the gyroscope and magnetometer frames, with vectors from polar-ble-sdk's Android tests."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.errors import DecodeError
from drivers.polar import pmd, pmd_settings

# PmdSettingTest.testPmdSettingsWithRange: 52 Hz, 16 bits, ranges 245-2000, 3 channels
SDK_ACC_SETTINGS = bytes.fromhex("00013400010110000204F500F401E803D007040103")


def test_polar_sdk_settings_list() -> None:
    assert pmd_settings.decode_settings(SDK_ACC_SETTINGS) == {
        "sample_rate_hz": (52,),
        "resolution_bits": (16,),
        "range": (245, 500, 1000, 2000),
        "channels": (3,),
    }


def test_polar_sdk_range_in_milliunits_is_signed() -> None:
    """PmdSettingTest.testPmdSettingWithRangeMilliUnit: FF FF FF FF reads -1."""
    data = bytes.fromhex("0302FFFFFFFFFF00000001010E00")
    assert pmd_settings.decode_settings(data) == {
        "range_milliunit": (-1, 255),
        "resolution_bits": (14,),
    }


def test_a_start_answer_gives_the_factor_as_a_float() -> None:
    settings = pmd.StreamSettings("gyro", 52, 16, 3, 2000)
    answer = pmd_settings.encode_settings({"factor": (0.061,)})
    assert answer.hex() == "0501" + "23db793d"  # 0.061: float32 0x3D79DB23, little-endian
    assert pmd_settings.with_factor(settings, answer).factor == pytest.approx(0.061)
    assert pmd_settings.with_factor(settings, b"").factor == 1.0


def test_the_factor_puts_samples_in_the_gateways_units() -> None:
    """ACC in milli-G (factor 1: as sent), gyroscope in millidegrees/s, magnetometer in nT
    (type 0 gauss, type 1 milligauss)."""
    counts = np.array([[100, -200, 0]], dtype=np.int32)
    assert pmd_settings.physical("acc", counts, 1.0).tolist() == [[100, -200, 0]]
    assert pmd_settings.physical("gyro", counts, 0.061).tolist() == [[6100, -12200, 0]]
    assert pmd_settings.physical("mag", counts, 0.0015).tolist() == [[15000, -30000, 0]]
    status = np.array([[100, -200, 0, 3]], dtype=np.int32)  # type 1: calibration status
    assert pmd_settings.physical("mag", status, 1.0, frame_type=0x81).tolist() == [
        [10000, -20000, 0, 3]
    ]
    assert pmd_settings.physical("ecg", counts, 1.0) is counts


def test_the_feature_read_names_every_measurement_by_its_bit() -> None:
    """PmdMeasurementType.fromByteArray: byte 1 ECG 01, PPG 02, ACC 04, PPI 08, gyro 20, mag
    40, skin temperature 80; byte 2 SDK mode 02 ... offline HR 40."""
    assert pmd_settings.decode_features(bytes.fromhex("0F0500")) == ("ecg", "acc")
    assert pmd_settings.decode_features(bytes.fromhex("0F6E00")) == (
        "ppg",
        "acc",
        "ppi",
        "gyro",
        "mag",
    )
    assert pmd_settings.decode_features(bytes.fromhex("0F0002")) == ("sdk_mode",)
    assert pmd_settings.decode_features(bytes.fromhex("0F01")) == ("ecg",)  # one byte of bits
    with pytest.raises(DecodeError):
        pmd_settings.decode_features(bytes.fromhex("F00500"))


@pytest.mark.parametrize(
    ("offer", "wanted", "used", "changed"),
    [
        ({"sample_rate_hz": (130,)}, 250, 130, {"sample_rate_hz": (250, 130)}),
        ({"sample_rate_hz": (25, 50, 100, 200)}, 75, 100, {"sample_rate_hz": (75, 100)}),
        ({"sample_rate_hz": (25, 50, 100, 200)}, 60, 50, {"sample_rate_hz": (60, 50)}),
        ({"sample_rate_hz": (25, 50)}, 50, 50, {}),
        ({}, 77, 77, {}),  # nothing listed: asked as configured
    ],
)
def test_the_nearest_offered_rate_is_used_and_said(
    offer: pmd_settings.Offer, wanted: int, used: int, changed: dict[str, tuple[int, int]]
) -> None:
    choice = pmd_settings.nearest(pmd.StreamSettings("acc", wanted, 16, 3), offer)
    assert choice.settings.sample_rate_hz == used and choice.changed == changed


def test_a_range_not_configured_is_the_largest_offered() -> None:
    offer = pmd_settings.decode_settings(SDK_ACC_SETTINGS)
    choice = pmd_settings.nearest(pmd.StreamSettings("acc", 52, 16, 3), offer)
    assert choice.settings.range_ == 2000 and choice.changed == {}
    asked = pmd_settings.nearest(pmd.StreamSettings("acc", 52, 16, 3, range_=300), offer)
    assert asked.settings.range_ == 245 and asked.describe() == "range 300 -> 245"


@given(st.binary(max_size=64))
def test_any_bytes_raise_nothing_but_decode_error(data: bytes) -> None:
    for decoder in (
        pmd_settings.decode_settings,
        pmd_settings.decode_features,
        pmd_settings.control_point_json,
    ):
        with contextlib.suppress(DecodeError):
            decoder(data)


@given(
    st.dictionaries(
        st.sampled_from(["sample_rate_hz", "resolution_bits", "range", "channels"]),
        st.lists(st.integers(1, 127), min_size=1, max_size=6).map(tuple),
    )
)
def test_settings_lists_round_trip(offer: dict[str, tuple[int, ...]]) -> None:
    assert pmd_settings.decode_settings(pmd_settings.encode_settings(offer)) == offer


@given(st.sets(st.sampled_from(["ecg", "ppg", "acc", "ppi", "gyro", "mag", "pressure"])))
def test_feature_reads_round_trip(measurements: set[str]) -> None:
    decoded = pmd_settings.decode_features(pmd_settings.encode_features(measurements))
    assert set(decoded) == measurements


def test_polar_sdk_gyroscope_frame() -> None:
    """GyrDataTest, compressed type 0: a reference sample and one 3-bit delta sample."""
    data = bytes.fromhex("05FFFFFFFFFFFFFF7F80EAFF08000D000301DF00")
    frame = pmd.decode_pmd_data(data, channels=3, resolution_bits=16)
    assert frame.measurement == "gyro" and frame.timestamp_ns == 2**63 - 1
    assert frame.samples.tolist() == [[-22, 8, 13], [-23, 11, 16]]


def test_polar_sdk_magnetometer_frame() -> None:
    """MagDataTest, compressed type 0: 6-bit deltas."""
    data = bytes.fromhex("06009435770000000080E2E6FA15490A06017F20FC")
    frame = pmd.decode_pmd_data(data, channels=3, resolution_bits=16)
    assert frame.measurement == "mag" and frame.timestamp_ns == 2_000_000_000
    assert frame.samples.tolist() == [[-6430, 5626, 2633], [-6431, 5627, 2635]]


def test_gyroscope_float_frames_are_refused_by_name() -> None:
    data = bytes.fromhex("05FFFFFFFFFFFFFF7F81000000000000000000000000")
    with pytest.raises(DecodeError, match="floats"):
        pmd.decode_pmd_data(data, channels=3, resolution_bits=32)


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (
            "F001020000" + SDK_ACC_SETTINGS.hex(),
            {
                "op_code": 1,
                "op": "get_measurement_settings",
                "measurement": "acc",
                "status": "success",
                "more": False,
                "settings": {
                    "sample_rate_hz": [52],
                    "resolution_bits": [16],
                    "range": [245, 500, 1000, 2000],
                    "channels": [3],
                },
            },
        ),
        (  # BlePmdClientControlPointResponseTest: a failing answer for the magnetometer
            "F001060700",
            {
                "op_code": 1,
                "op": "get_measurement_settings",
                "measurement": "mag",
                "status": "invalid_resolution",
                "more": False,
            },
        ),
        ("0F6E00", {"features": ["ppg", "acc", "ppi", "gyro", "mag"]}),
        ("0100", {"measurement_stopped": ["ecg"]}),
    ],
)
def test_wgw_decode_pmd_control_point(payload: str, expected: dict[str, object]) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "gateway", "decode", "pmd_control_point", payload],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(out.stdout) == expected
