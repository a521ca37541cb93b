"""How late the event loop runs a timer: the gateway's own responsiveness, for /metrics."""

from __future__ import annotations

import asyncio
import bisect
import collections
from typing import Final

_WINDOW: Final = 120  # samples kept for the maximum: a minute at the default interval
# upper bounds of the histogram's buckets, seconds (Prometheus' ``le``); +Inf is implied
BUCKETS_S: Final = (
    0.001, 0.002, 0.005, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.2, 0.5, 1.0, 5.0,
)  # fmt: skip


class LoopLag:
    """Sleeps ``interval_s`` over and over and records how much later than asked it woke.

    Keeps the last minute's samples (latest, maximum) and, since start, a count per bucket of
    ``BUCKETS_S`` so that a reader can take percentiles over any window it likes.
    """

    def __init__(self, interval_s: float = 0.5) -> None:
        self._interval_s = interval_s
        self._samples: collections.deque[float] = collections.deque(maxlen=_WINDOW)
        self._counts = [0] * (len(BUCKETS_S) + 1)
        self._sum_s = 0.0

    @property
    def last_s(self) -> float:
        """The latest lag (0 before the first sample)."""
        return self._samples[-1] if self._samples else 0.0

    @property
    def max_s(self) -> float:
        """The largest lag of the last minute or so."""
        return max(self._samples, default=0.0)

    @property
    def counts(self) -> tuple[int, ...]:
        """Samples since start per bucket (not cumulative), the last one above every bound."""
        return tuple(self._counts)

    @property
    def sum_s(self) -> float:
        """All samples since start added up (the histogram's sum)."""
        return self._sum_s

    def record(self, lag_s: float) -> None:
        """One sample."""
        self._samples.append(lag_s)
        self._counts[bisect.bisect_left(BUCKETS_S, lag_s)] += 1
        self._sum_s += lag_s

    async def run(self) -> None:
        """Measure until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            asked = loop.time() + self._interval_s
            await asyncio.sleep(self._interval_s)
            self.record(max(0.0, loop.time() - asked))


def percentile_s(counts: tuple[int, ...] | list[int], q: float) -> float:
    """The ``q``th percentile of bucket counts, as its bucket's upper bound (inf above all)."""
    total = sum(counts)
    if total == 0:
        return 0.0
    running = 0
    for bound, n in zip((*BUCKETS_S, float("inf")), counts, strict=True):
        running += n
        if running >= q / 100.0 * total:
            return bound
    return float("inf")
