"""Signal quality indices for windows of filtered PPG and ECG.

- PPG: skewness SQI (Elgendi, "Optimal Signal Quality Index for Photoplethysmogram Signals",
  Bioengineering 3(4):21, 2016 - the best of eight indices there). A clean pulse is skewed
  (sharp systolic upstroke, long diastolic tail); motion artefact and noise are not.
- ECG: kurtosis SQI (Li, Clifford and Moody, "Robust heart rate estimation from multiple
  asynchronous noisy sources", Physiol. Meas. 29:15, 2008; Clifford et al., 2012). A clean ECG is
  peaked (kurtosis well above 5); Gaussian noise has 3.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from scipy import stats

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

Kind = Literal["ppg", "ecg"]

# Defaults of the gates; both are config values (conversion.sqi_min_ppg / _ecg).
PPG_SKEW_MIN = 0.5
ECG_KURTOSIS_MIN = 5.0


def sqi(kind: Kind, window: NDArray[np.float64]) -> float:
    """The index of one channel's filtered window: skewness (PPG) or kurtosis (ECG)."""
    if kind == "ppg":
        return float(stats.skew(window))
    return float(stats.kurtosis(window, fisher=False))


def passes(kind: Kind, value: float, threshold: float | None = None) -> bool:
    """Whether a window is good enough to spend quota on."""
    default = PPG_SKEW_MIN if kind == "ppg" else ECG_KURTOSIS_MIN
    return value >= (default if threshold is None else threshold)
