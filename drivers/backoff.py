"""Capped exponential backoff with full jitter: the one used by links and sinks alike."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    """Attempt n waits uniformly in [0, min(max_s, min_s * 2**(n-1))].

    (AWS architecture blog, "Exponential Backoff And Jitter".)
    """

    min_s: float
    max_s: float

    def delay_s(self, attempt: int) -> float:
        """The wait before retry number ``attempt`` (1-based)."""
        ceiling = min(self.max_s, self.min_s * 2 ** min(max(attempt - 1, 0), 30))
        return random.uniform(0.0, ceiling)
