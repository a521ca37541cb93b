"""Plan quotas of the TCM API (API.md B) as fixed windows, shared by the client and the emulator.

Decision (the seed is silent): the four windows are fixed and aligned to the epoch (minute,
hour, day, and a 30-day "month"), which is what an ``X-RateLimit-Reset`` in epoch seconds
suggests; the headers describe the window with the least room left. ``scale`` shrinks every
window (tests and demos run a "day" in seconds); production uses 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Final

PLANS: Final = {
    "free": (10, 100, 1_000, 10_000),
    "basic": (60, 600, 10_000, 100_000),
    "pro": (300, 3_000, 50_000, 500_000),
    "enterprise": (1_000, 10_000, 200_000, 2_000_000),
}
PERIODS_S: Final = (60.0, 3_600.0, 86_400.0, 30 * 86_400.0)
NAMES: Final = ("minute", "hour", "day", "month")


@dataclass(slots=True)
class Windows:
    """Request counts in the current window of each period."""

    limits: tuple[int, ...]
    scale: float = 1.0
    starts: list[float] = field(default_factory=lambda: [0.0] * 4)
    counts: list[int] = field(default_factory=lambda: [0] * 4)

    def _roll(self, now: float) -> None:
        for i, period in enumerate(PERIODS_S):
            length = period * self.scale
            start = math.floor(now / length) * length
            if start != self.starts[i]:
                self.starts[i], self.counts[i] = start, 0

    def sustainable_interval_s(self) -> float:
        """The largest period / limit: at this pace no window ever runs out."""
        return max(p * self.scale / limit for p, limit in zip(PERIODS_S, self.limits, strict=True))

    def wait_s(self, now: float) -> float:
        """0 if a request may go now, else how long until every window has room."""
        self._roll(now)
        waits = [
            self.starts[i] + PERIODS_S[i] * self.scale - now
            for i, limit in enumerate(self.limits)
            if self.counts[i] >= limit
        ]
        return max(waits, default=0.0)

    def take(self, now: float) -> None:
        """Count one request in every window."""
        self._roll(now)
        for i in range(4):
            self.counts[i] += 1

    def tightest(self, now: float) -> tuple[int, int, float]:
        """(limit, remaining, reset epoch s) of the window with the least room."""
        self._roll(now)
        i = min(range(4), key=lambda j: self.limits[j] - self.counts[j])
        return (
            self.limits[i],
            max(0, self.limits[i] - self.counts[i]),
            self.starts[i] + PERIODS_S[i] * self.scale,
        )

    def correct(self, now: float, limit: int, remaining: int, reset_s: float) -> None:
        """Trust the server where it counts more than we do (another client, a restart)."""
        self._roll(now)
        for i, period in enumerate(PERIODS_S):
            end = self.starts[i] + period * self.scale
            if self.limits[i] == limit and abs(end - reset_s) < 1.0 + 0.01 * period * self.scale:
                self.counts[i] = max(self.counts[i], limit - remaining)
