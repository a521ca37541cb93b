"""IEEE 11073 SFLOAT and FLOAT: values, negative exponents, and every special value."""

from __future__ import annotations

import pytest
from hypothesis import given

from drivers.gatt import ieee11073
from drivers.gatt.ieee11073 import MedFloat, Special
from tests.drivers.gatt.strategies import medfloats


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        (0x0072, 114.0),  # exponent 0
        (0xF16A, 36.2),  # exponent -1: 362e-1
        (0xE2D5, 7.25),  # exponent -2: 725e-2
        (0x1005, 50.0),  # exponent +1
        (0x0FFF, -1.0),  # negative mantissa
    ],
)
def test_sfloat_values(raw: int, value: float) -> None:
    """Test SFLOAT decoding of positive, negative and fractional values."""
    assert ieee11073.sfloat(raw).value == value


@pytest.mark.parametrize(
    ("raw", "special"),
    [
        (0x07FF, Special.NAN),
        (0x0800, Special.NRES),
        (0x07FE, Special.POS_INF),
        (0x0802, Special.NEG_INF),
        (0x0801, Special.RFU),
    ],
)
def test_sfloat_special_values(raw: int, special: Special) -> None:
    """Test the five SFLOAT special values (PHD Transcoding White Paper)."""
    decoded = ieee11073.sfloat(raw)
    assert decoded.special is special
    assert decoded.value is None


@pytest.mark.parametrize(
    ("raw", "special"),
    [
        (0x007FFFFF, Special.NAN),
        (0x00800000, Special.NRES),
        (0x007FFFFE, Special.POS_INF),
        (0x00800002, Special.NEG_INF),
        (0x00800001, Special.RFU),
    ],
)
def test_float_special_values(raw: int, special: Special) -> None:
    """Test the five 32-bit FLOAT special values."""
    assert ieee11073.float32(raw).special is special


def test_float_with_negative_exponent() -> None:
    """Test FLOAT 0xFF000171 = 369e-1 = 36.9."""
    assert ieee11073.float32(0xFF000171).value == 36.9


def test_special_json_is_null_plus_a_named_sibling() -> None:
    """Test that put() writes null and <key>_special for a special value."""
    out: dict[str, object] = {}
    ieee11073.put(out, "spo2_pct", ieee11073.special(Special.NRES))
    ieee11073.put(out, "pulse_rate_bpm", MedFloat(72, 0))
    assert out == {"spo2_pct": None, "spo2_pct_special": "NRes", "pulse_rate_bpm": 72.0}


@given(medfloats(16))
def test_sfloat_round_trips(value: MedFloat) -> None:
    """Test that encoding then decoding an SFLOAT gives back the same mantissa and exponent."""
    assert ieee11073.sfloat(ieee11073.to_raw(value)) == value


@given(medfloats(32))
def test_float_round_trips(value: MedFloat) -> None:
    """Test that encoding then decoding a FLOAT gives back the same mantissa and exponent."""
    assert ieee11073.float32(ieee11073.to_raw(value)) == value
