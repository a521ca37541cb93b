"""Heart rate and beat-to-beat intervals from a filtered PPG or ECG window (peak detection)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy import signal

if TYPE_CHECKING:
    from numpy.typing import NDArray

MAX_BPM = 200.0


@dataclass(frozen=True, slots=True)
class Beats:
    """What the peaks of a window say: heart rate (median interval) and every interval."""

    heart_rate_bpm: float | None
    intervals_ms: tuple[float, ...]


def beats(window: NDArray[np.float64], rate_hz: float) -> Beats:
    """Find systolic peaks (PPG) or R peaks (ECG) in one channel's filtered window.

    Peaks must be at least 60 / 200 bpm apart and stand out by a third of the window's
    5-95 % range, which rejects the dicrotic wave and T waves.
    """
    spread = float(np.percentile(window, 95) - np.percentile(window, 5))
    if spread <= 0:
        return Beats(None, ())
    peaks, _ = signal.find_peaks(
        window, distance=max(1, int(rate_hz * 60.0 / MAX_BPM)), prominence=spread / 3.0
    )
    if len(peaks) < 2:
        return Beats(None, ())
    intervals_s = np.diff(peaks) / rate_hz
    return Beats(
        60.0 / float(np.median(intervals_s)), tuple(float(i * 1000.0) for i in intervals_s)
    )
