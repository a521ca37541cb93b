"""The simulated world's clock: real loop time, optionally compressed by a speed factor."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncio


class SimClock:
    """Simulated UTC time: starts at the real time and runs ``speed`` times faster.

    Device timers fire every ``interval / speed`` real seconds and stamp simulated time, so a
    test can run a simulated minute in a few real seconds.
    """

    def __init__(self, speed: float = 1.0) -> None:
        if speed <= 0:
            msg = "speed must be positive"
            raise ValueError(msg)
        self.speed = speed
        self._start_utc_s = time.time()
        self._start_mono_s = time.monotonic()

    def now_s(self) -> float:
        """Simulated UTC epoch seconds."""
        return self._start_utc_s + (time.monotonic() - self._start_mono_s) * self.speed

    def real_s(self, simulated_s: float) -> float:
        """How long ``simulated_s`` lasts in real seconds."""
        return simulated_s / self.speed

    def loop_time_at(self, loop: asyncio.AbstractEventLoop, simulated_s_from_now: float) -> float:
        """The loop's clock reading ``simulated_s_from_now`` simulated seconds from now."""
        return loop.time() + self.real_s(simulated_s_from_now)
