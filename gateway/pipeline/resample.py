"""A streaming polyphase resampler equal to ``scipy.signal.resample_poly`` on the whole signal.

It uses resample_poly's own anti-aliasing filter (Kaiser window, beta 5, half length
10 x max(up, down) taps) and delay compensation, designed once, and carries the input history
between chunks; each output sample is emitted as soon as every input it depends on has
arrived. So the concatenated output equals ``resample_poly(whole, up, down)`` sample for sample,
except the last few, which resample_poly computes against zeros after the end of the signal.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from scipy import signal

if TYPE_CHECKING:
    from numpy.typing import NDArray


class StreamingResampler:
    """Resample ``(n_samples, n_channels)`` chunks from ``rate_in_hz`` to ``rate_out_hz``."""

    def __init__(self, rate_in_hz: int, rate_out_hz: int, n_channels: int) -> None:
        g = math.gcd(rate_in_hz, rate_out_hz)
        self.up, self.down = rate_out_hz // g, rate_in_hz // g
        max_rate = max(self.up, self.down)
        half_len = 10 * max_rate
        h = signal.firwin(2 * half_len + 1, 1.0 / max_rate, window=("kaiser", 5.0)) * self.up
        n_pre_pad = self.down - half_len % self.down
        self._h = np.concatenate([np.zeros(n_pre_pad), h])
        self._skip = (half_len + n_pre_pad) // self.down
        self._taps = math.ceil(len(self._h) / self.up)  # inputs one output depends on
        self._n_channels = n_channels
        self.reset()

    @property
    def history_len(self) -> int:
        """Input samples an output depends on: feeding this many zeros flushes the delay."""
        return self._taps

    def reset(self) -> None:
        """Start again, as if the next chunk were the start of a signal."""
        # The kept history always starts at an input index that is a multiple of ``down``:
        # then upfirdn's outputs over (history + chunk) line up with the global outputs.
        self._history = np.zeros((math.ceil(self._taps / self.down) * self.down, self._n_channels))
        self._n_in = 0  # inputs seen
        self._m_next = 0  # next upfirdn output index to produce

    def process(self, chunk: NDArray[np.float64]) -> NDArray[np.float64]:
        """Resample one chunk; returns every output sample now computable."""
        buffer = np.concatenate([self._history, chunk])
        start_k = self._n_in - len(self._history)  # a multiple of down
        self._n_in += len(chunk)
        # upfirdn output m is complete once input floor(m * down / up) has arrived
        m_stop = (self._n_in - 1) * self.up // self.down + 1
        offset = start_k * self.up // self.down
        m_from = max(self._m_next, self._skip)
        self._m_next = m_stop
        keep_from = ((self._n_in - self._taps) // self.down) * self.down
        self._history = buffer[keep_from - start_k :]
        if m_from >= m_stop:
            return np.zeros((0, self._n_channels))
        y = signal.upfirdn(self._h, buffer, self.up, self.down, axis=0)
        out: NDArray[np.float64] = y[m_from - offset : m_stop - offset]
        return out
