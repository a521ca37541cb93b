"""Synthetic but physiological signals for simulated devices, reproducible from a seed.

Every signal is a pure function of simulated time since the device started, so tests can ask
for the ground truth at any moment: the heart rate drifts sinusoidally around a resting value;
the beat phase is its closed-form integral; ECG beats (P, QRS, T as Gaussians) sit on that
phase, and the PPG pulse follows each R peak after a pulse transit time.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray

PULSE_TRANSIT_S = 0.2

# (phase centre, amplitude mV, width in beat phase) of P, Q, R, S, T
_ECG_WAVES = (
    (0.10, 0.15, 0.025),
    (0.23, -0.10, 0.008),
    (0.25, 1.20, 0.010),
    (0.27, -0.25, 0.010),
    (0.50, 0.30, 0.050),
)
# Einthoven: leads I and III as fractions of lead II for a frontal axis near +60 degrees
_LEAD_GAINS = np.array([0.5, 1.0, 0.5])


class HeartModel:
    """A heart rate that drifts slowly around a resting value, and the waves it drives."""

    def __init__(self, seed: int, resting_bpm: float = 68.0) -> None:
        self._rng = np.random.default_rng(seed)
        self.resting_bpm = resting_bpm + float(self._rng.uniform(-6.0, 6.0))
        self.swing_bpm = 6.0
        self.period_s = float(self._rng.uniform(90.0, 150.0))
        self._phase_offset = float(self._rng.uniform(0.0, 1.0))

    def heart_rate_bpm(self, t_s: float) -> float:
        """Ground-truth heart rate ``t_s`` simulated seconds after start."""
        return self.resting_bpm + self.swing_bpm * math.sin(2.0 * math.pi * t_s / self.period_s)

    def rr_interval_s(self, t_s: float) -> float:
        """The beat-to-beat interval that matches the heart rate at ``t_s``."""
        return 60.0 / self.heart_rate_bpm(t_s)

    def beats(self, t_s: NDArray[np.float64]) -> NDArray[np.float64]:
        """Beats elapsed since start: the integral of the heart rate, in closed form."""
        w = 2.0 * np.pi / self.period_s
        return (
            self.resting_bpm * t_s + self.swing_bpm * (1.0 - np.cos(w * t_s)) / w
        ) / 60.0 + self._phase_offset

    def ecg_mv(self, t_s: NDArray[np.float64], leads: int = 1) -> NDArray[np.float64]:
        """ECG in millivolts, shape ``(n, leads)``: lead II, or leads I, II, III."""
        frac = self.beats(t_s) % 1.0
        wave = np.zeros_like(frac)
        for centre, amplitude, width in _ECG_WAVES:
            wave += amplitude * np.exp(-(((frac - centre) / width) ** 2))
        if leads == 1:
            return wave.reshape(-1, 1)
        return np.outer(wave, _LEAD_GAINS[:leads])

    def pulse_wave(self, t_s: NDArray[np.float64]) -> NDArray[np.float64]:
        """A PPG pulse (systolic peak and dicrotic wave), ``PULSE_TRANSIT_S`` after each R peak."""
        frac = self.beats(t_s - PULSE_TRANSIT_S) % 1.0
        systolic = np.exp(-(((frac - 0.30) / 0.07) ** 2))
        dicrotic = 0.35 * np.exp(-(((frac - 0.60) / 0.09) ** 2))
        return systolic + dicrotic

    def noise(self, shape: tuple[int, ...], scale: float) -> NDArray[np.float64]:
        """Gaussian sensor noise."""
        return self._rng.normal(0.0, scale, shape)


def spo2_pct(t_s: float) -> float:
    """Ground-truth SpO2: 97 % wandering by one point over minutes."""
    return 97.0 + math.sin(2.0 * math.pi * t_s / 400.0)


def temperature_c(t_s: float) -> float:
    """Ground-truth skin temperature: 36.6 C wandering by 0.3 over an hour."""
    return 36.6 + 0.3 * math.sin(2.0 * math.pi * t_s / 3600.0)


def blood_pressure_mmhg(t_s: float) -> tuple[float, float]:
    """Ground-truth systolic and diastolic pressure."""
    swing = math.sin(2.0 * math.pi * t_s / 1800.0)
    return 118.0 + 8.0 * swing, 76.0 + 5.0 * swing


def steps(t_s: float) -> float:
    """Ground-truth step count: walking (~100 steps a minute) half of every ten minutes."""
    whole, part = divmod(t_s, 600.0)
    return (whole * 300.0 + min(part, 300.0)) * 100.0 / 60.0


def wrist_acceleration(t_s: float) -> tuple[int, int, int]:
    """A wrist's accelerometer in raw units (1024 a g): gravity, and the arm's swing at 1 Hz."""
    swing = math.sin(2.0 * math.pi * t_s)
    return round(300 * swing), round(-200 * swing), round(1000 + 50 * swing)
