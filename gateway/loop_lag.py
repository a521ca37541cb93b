"""How late the event loop runs a timer: the gateway's own responsiveness, for /metrics."""

from __future__ import annotations

import asyncio
import collections
from typing import Final

_WINDOW: Final = 120  # samples kept for the maximum: a minute at the default interval


class LoopLag:
    """Sleeps ``interval_s`` over and over and records how much later than asked it woke."""

    def __init__(self, interval_s: float = 0.5) -> None:
        self._interval_s = interval_s
        self._samples: collections.deque[float] = collections.deque(maxlen=_WINDOW)

    @property
    def last_s(self) -> float:
        """The latest lag (0 before the first sample)."""
        return self._samples[-1] if self._samples else 0.0

    @property
    def max_s(self) -> float:
        """The largest lag of the last minute or so."""
        return max(self._samples, default=0.0)

    async def run(self) -> None:
        """Measure until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            asked = loop.time() + self._interval_s
            await asyncio.sleep(self._interval_s)
            self._samples.append(max(0.0, loop.time() - asked))
