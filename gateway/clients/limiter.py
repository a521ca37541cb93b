"""The client side of the TCM plan: never send a request the plan would refuse.

Counts requests in the plan's four windows, waits for room before sending, takes the server's
``X-RateLimit-*`` headers as corrections, and keeps its counts in a small JSON file so that a
restart does not forget the day's and the month's usage.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import TYPE_CHECKING

from gateway.rate_limits import Windows

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from pathlib import Path

log = logging.getLogger(__name__)


class ClientRateLimiter:
    """Waits in :meth:`acquire` until the plan has room; one instance per API account."""

    def __init__(
        self,
        limits: tuple[int, int, int, int],
        *,
        state_path: Path | None = None,
        scale: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._windows = Windows(limits, scale)
        self._state_path = state_path
        self._clock = clock
        self._lock = asyncio.Lock()
        self.waited_s = 0.0
        self._load()

    def sustainable_interval_s(self) -> float:
        """The steady request interval that never exhausts any window (the month, in practice)."""
        return self._windows.sustainable_interval_s()

    def remaining(self) -> tuple[int, int, float]:
        """(limit, remaining, reset epoch s) of the tightest window."""
        return self._windows.tightest(self._clock())

    async def acquire(self) -> None:
        """Return when one more request fits every window, and count it."""
        async with self._lock:
            while (wait_s := self._windows.wait_s(self._clock())) > 0:
                log.info("rate limit: waiting %.1f s for the plan's next window", wait_s)
                self.waited_s += wait_s
                await asyncio.sleep(wait_s)
            self._windows.take(self._clock())
            self._save()

    def observe(self, headers: Mapping[str, str]) -> None:
        """Correct the counts by the server's view of the tightest window."""
        try:
            limit = int(headers["X-RateLimit-Limit"])
            remaining = int(headers["X-RateLimit-Remaining"])
            reset_s = float(headers["X-RateLimit-Reset"])
        except (KeyError, ValueError):
            return
        self._windows.correct(self._clock(), limit, remaining, reset_s)
        self._save()

    def _load(self) -> None:
        if self._state_path is None or not self._state_path.exists():
            return
        try:
            state = json.loads(self._state_path.read_text())
            starts = [float(s) for s in state["starts"]]
            counts = [int(c) for c in state["counts"]]
        except (OSError, ValueError, KeyError, TypeError):
            log.warning("rate limit state %s unreadable: starting from zero", self._state_path)
            return
        if len(starts) == len(counts) == 4:
            self._windows.starts, self._windows.counts = starts, counts

    def _save(self) -> None:
        if self._state_path is None:
            return
        tmp = self._state_path.with_name(self._state_path.name + ".tmp")
        state = {"starts": self._windows.starts, "counts": self._windows.counts}
        with contextlib.suppress(OSError):  # a full disk must not stop uploads
            self._state_path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(state))
            tmp.replace(self._state_path)
