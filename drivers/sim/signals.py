"""Synthetic but physiological signals for simulated devices, reproducible from a seed."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray


class HeartModel:
    """A heart rate that drifts slowly around a resting value, and the pulse wave it drives.

    The ground truth is a pure function of time since the model started, so tests can ask what
    the device "really" measured at any moment.
    """

    def __init__(self, seed: int, resting_bpm: float = 68.0) -> None:
        rng = np.random.default_rng(seed)
        self._rng = rng
        self._resting_bpm = resting_bpm + float(rng.uniform(-6.0, 6.0))
        self._drift_period_s = float(rng.uniform(90.0, 150.0))
        self._phase = 0.0  # beats, accumulated by pulse_wave()
        self._t_last = 0.0

    def heart_rate_bpm(self, t_s: float) -> float:
        """Ground-truth heart rate at ``t_s`` seconds after start."""
        return self._resting_bpm + 6.0 * math.sin(2.0 * math.pi * t_s / self._drift_period_s)

    def rr_interval_s(self, t_s: float) -> float:
        """The beat-to-beat interval that matches the heart rate at ``t_s``."""
        return 60.0 / self.heart_rate_bpm(t_s)

    def pulse_wave(self, t_s: NDArray[np.float64]) -> NDArray[np.float64]:
        """A PPG pulse wave (systolic peak and dicrotic wave) sampled at increasing times ``t_s``.

        Calls must come with consecutive, increasing times: the beat phase is carried over.
        """
        bpm = self._resting_bpm + 6.0 * np.sin(2.0 * np.pi * t_s / self._drift_period_s)
        rate_hz = bpm / 60.0
        dt = np.diff(np.concatenate(([self._t_last], t_s)))
        phase = self._phase + np.cumsum(rate_hz * dt)
        self._phase = float(phase[-1])
        self._t_last = float(t_s[-1])
        frac = phase % 1.0
        systolic = np.exp(-(((frac - 0.25) / 0.07) ** 2))
        dicrotic = 0.35 * np.exp(-(((frac - 0.55) / 0.09) ** 2))
        return systolic + dicrotic

    def noise(self, n: int, scale: float) -> NDArray[np.float64]:
        """Gaussian sensor noise."""
        return self._rng.normal(0.0, scale, n)
