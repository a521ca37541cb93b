"""Streaming IIR filters: Butterworth band-pass and an optional mains notch.

Second-order sections with carried state, so that filtering chunk by chunk equals filtering
all at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import signal

if TYPE_CHECKING:
    from numpy.typing import NDArray


def bandpass_sos(
    rate_hz: float,
    low_hz: float,
    high_hz: float,
    *,
    order: int = 4,
    notch_hz: float | None = None,
    notch_q: float = 30.0,
) -> NDArray[np.float64]:
    """Second-order sections of a Butterworth band-pass, followed by a notch if asked for.

    The upper edge is clipped below Nyquist, so a 25 Hz PPG stream with the default 8 Hz edge
    still gets a valid filter.
    """
    nyquist = rate_hz / 2.0
    high = min(high_hz, 0.95 * nyquist)
    sos: NDArray[np.float64] = signal.butter(
        order, [low_hz, high], btype="bandpass", fs=rate_hz, output="sos"
    )
    if notch_hz is not None and notch_hz < nyquist:
        b, a = signal.iirnotch(notch_hz, notch_q, fs=rate_hz)
        sos = np.vstack([sos, signal.tf2sos(b, a)])
    return sos


class StreamingFilter:
    """``sosfilt`` over consecutive chunks of ``(n_samples, n_channels)``, state carried.

    Starts from rest (zero state), exactly like ``sosfilt`` on the whole signal; :meth:`reset`
    starts again (after a gap, so that nothing rings across it).
    """

    def __init__(self, sos: NDArray[np.float64], n_channels: int) -> None:
        self._sos = sos
        self._n_channels = n_channels
        self._zi = np.zeros((sos.shape[0], 2, n_channels))

    def reset(self) -> None:
        """Forget the past: the next chunk is filtered as the start of a signal."""
        self._zi[:] = 0.0

    def process(self, chunk: NDArray[np.float64]) -> NDArray[np.float64]:
        """Filter one chunk (samples along axis 0)."""
        out, self._zi = signal.sosfilt(self._sos, chunk, axis=0, zi=self._zi)
        result: NDArray[np.float64] = out
        return result
