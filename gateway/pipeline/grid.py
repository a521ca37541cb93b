"""Irregular samples onto a uniform grid, cut into segments at gaps.

Chunks arrive stamped by BLE delivery (jittered) or by a device clock; the filters and the
resampler need uniform samples. Samples are put on a grid at the nominal rate by linear
interpolation between neighbours; a hole longer than ``max_gap_s`` ends the segment: nothing
is interpolated across it, and the consumer restarts its filters.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray


@dataclass(frozen=True, slots=True)
class GridChunk:
    """Uniform samples: ``t0_s`` is the first one's time; ``new_segment`` after a gap."""

    t0_s: float
    samples: NDArray[np.float64]
    new_segment: bool


class UniformGrid:
    """Puts ``(times, samples)`` chunks on a grid at ``rate_hz``, segment by segment.

    Grid point k of a segment is at ``t_first + k / rate_hz`` (no drift from summing periods).
    """

    def __init__(self, rate_hz: float, n_channels: int, max_gap_s: float = 1.0) -> None:
        self.rate_hz = rate_hz
        self._max_gap_s = max_gap_s
        self._n_channels = n_channels
        self._segment_t0 = 0.0
        self._k = 0  # next grid index in the segment
        self._last_t: float | None = None
        self._last_x = np.zeros(n_channels)

    def push(self, times_s: NDArray[np.float64], samples: NDArray[np.float64]) -> list[GridChunk]:
        """Add samples (times increasing); return the grid samples now known, per segment."""
        samples = np.asarray(samples, dtype=np.float64).reshape(len(times_s), self._n_channels)
        out: list[GridChunk] = []
        before = np.concatenate(
            [[self._last_t if self._last_t is not None else -np.inf], times_s[:-1]]
        )
        starts = np.flatnonzero(times_s - before > self._max_gap_s)
        bounds = [0, *starts.tolist(), len(times_s)]
        for a, b in itertools.pairwise(bounds):
            if a == b:
                continue
            new_segment = a in set(starts.tolist())
            if new_segment:
                self._segment_t0, self._k = float(times_s[a]), 0
                self._last_t, self._last_x = float(times_s[a]), samples[a]
            chunk = self._interpolate(times_s[a:b], samples[a:b], new_segment)
            if chunk is not None:
                out.append(chunk)
        return out

    def _interpolate(
        self,
        times_s: NDArray[np.float64],
        samples: NDArray[np.float64],
        new_segment: bool,
    ) -> GridChunk | None:
        assert self._last_t is not None
        t = np.concatenate([[self._last_t], times_s])
        x = np.vstack([self._last_x, samples])
        last_k = int(np.floor((t[-1] - self._segment_t0) * self.rate_hz + 1e-9))
        ks = np.arange(self._k, last_k + 1)
        self._last_t, self._last_x = float(t[-1]), x[-1]
        if len(ks) == 0:
            return None
        grid = self._segment_t0 + ks / self.rate_hz
        values = np.column_stack([np.interp(grid, t, x[:, c]) for c in range(self._n_channels)])
        self._k = int(ks[-1]) + 1
        return GridChunk(float(grid[0]), values, new_segment)
