"""A vital reading's values in the units every consumer shows: mmHg and degrees C.

Devices may send kPa or degrees F (the GATT profiles allow both); the health records and Home
Assistant both convert here.
"""

from __future__ import annotations

from typing import Final

_MMHG_PER_KPA: Final = 7.500_62


def pressure_mmhg(values: dict[str, object]) -> tuple[float, float] | None:
    """(systolic, diastolic) in mmHg, rounded to 0.1; None when the reading has neither."""
    scale = _MMHG_PER_KPA if values.get("unit") == "kPa" else 1.0
    systolic, diastolic = values.get("systolic"), values.get("diastolic")
    if isinstance(systolic, float) and isinstance(diastolic, float):
        return round(systolic * scale, 1), round(diastolic * scale, 1)
    return None


def temperature_c(values: dict[str, object]) -> float | None:
    """The temperature in degrees C, rounded to 0.01; None when the reading has none."""
    temperature = values.get("temperature")
    if not isinstance(temperature, float):
        return None
    celsius = (temperature - 32.0) * 5.0 / 9.0 if values.get("unit") == "F" else temperature
    return round(celsius, 2)
