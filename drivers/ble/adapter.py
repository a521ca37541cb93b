"""The adapter's health: tell a wedged Bluetooth adapter from an empty room, and power-cycle it.

BlueZ adapters (USB dongles and the Pi's UART controller alike) sometimes stop reporting
advertisements while every call still succeeds. The links report each scan and each
advertisement here; when scanning has gone on for ``silence_s`` without a single
advertisement from anything, or several scans in a row failed to start, the backend's
recovery (on BlueZ, Home Assistant's ``bluetooth-auto-recovery``: rfkill, power cycle, USB
reset) runs. Recoveries back off exponentially while they do not bring advertisements back,
so an adapter in a genuinely empty field is power-cycled rarely.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator

log = logging.getLogger(__name__)

_SCAN_ERRORS_TO_STALL: Final = 3


@dataclass(frozen=True, slots=True)
class AdapterStatistics:
    """For status pages and metrics."""

    adapter: str
    scanning: bool
    silent_scan_s: float  # time spent scanning since the last advertisement
    stalls: int
    recoveries: int
    recovery_failures: int
    last_stall_reason: str | None


class AdapterWatch:
    """Shared by every link of one adapter; :meth:`run` is its supervising task.

    Args:
        adapter: The adapter's name (``hci0``).
        recover: The backend's recovery for a named adapter, returning whether it worked;
            ``None``: stalls are counted and logged, nothing more.
        silence_s: Scanning time without any advertisement that counts as a stall.
        recovery_interval_s: Least time between two recoveries; doubles (up to
            ``max_recovery_interval_s``) while recoveries bring no advertisement back.
        check_interval_s: How often the stall condition is evaluated.
        clock: Monotonic seconds (injectable for tests).
    """

    def __init__(
        self,
        adapter: str,
        recover: Callable[[str], Awaitable[bool]] | None,
        *,
        silence_s: float = 60.0,
        recovery_interval_s: float = 300.0,
        max_recovery_interval_s: float = 3600.0,
        check_interval_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.adapter = adapter
        self._log = logging.LoggerAdapter(log, {"adapter": adapter})
        self._recover = recover
        self._silence_s = silence_s
        self._base_interval_s = recovery_interval_s
        self._interval_s = recovery_interval_s
        self._max_interval_s = max_recovery_interval_s
        self._check_interval_s = check_interval_s
        self._clock = clock
        self._scanners = 0
        self._scan_since = 0.0
        self._silent_s = 0.0
        self._scan_errors = 0
        self._next_recovery_at = float("-inf")
        self._stalls = 0
        self._recoveries = 0
        self._failures = 0
        self._last_reason: str | None = None

    @contextlib.contextmanager
    def scanning(self) -> Iterator[None]:
        """Held by a link while it scans; concurrent scans count once."""
        if self._scanners == 0:
            self._scan_since = self._clock()
        self._scanners += 1
        try:
            yield
        finally:
            self._scanners -= 1
            if self._scanners == 0:
                self._silent_s += self._clock() - self._scan_since

    def advert_seen(self) -> None:
        """Any advertisement from any device: the adapter works."""
        self._silent_s = 0.0
        self._scan_since = self._clock()
        self._scan_errors = 0
        self._interval_s = self._base_interval_s

    def scan_failed(self) -> None:
        """A scan could not start (BlueZ: ``NotReady``, ``InProgress``, no adapter)."""
        self._scan_errors += 1

    def silent_scan_s(self) -> float:
        """Time spent scanning since the last advertisement (or recovery)."""
        ongoing = self._clock() - self._scan_since if self._scanners else 0.0
        return self._silent_s + ongoing

    def stall_reason(self) -> str | None:
        """Why the adapter looks wedged now, or None."""
        if self.silent_scan_s() >= self._silence_s:
            return f"no advertisement in {self.silent_scan_s():.0f} s of scanning"
        if self._scan_errors >= _SCAN_ERRORS_TO_STALL:
            return f"{self._scan_errors} scans in a row failed to start"
        return None

    def statistics(self) -> AdapterStatistics:
        """A snapshot."""
        return AdapterStatistics(
            adapter=self.adapter,
            scanning=self._scanners > 0,
            silent_scan_s=round(self.silent_scan_s(), 3),
            stalls=self._stalls,
            recoveries=self._recoveries,
            recovery_failures=self._failures,
            last_stall_reason=self._last_reason,
        )

    async def run(self) -> None:
        """Check for a stall every ``check_interval_s`` and recover, until cancelled."""
        while True:
            await asyncio.sleep(self._check_interval_s)
            await self.check()

    async def check(self) -> None:
        """One evaluation: recover if the adapter looks stalled and a recovery is allowed."""
        reason = self.stall_reason()
        if reason is None or self._clock() < self._next_recovery_at:
            return
        self._stalls += 1
        self._last_reason = reason
        self._next_recovery_at = self._clock() + self._interval_s
        self._interval_s = min(self._interval_s * 2, self._max_interval_s)
        if self._recover is None:
            self._log.warning(
                "adapter %s looks stalled (%s); no recovery on this platform", self.adapter, reason
            )
            self._forget_stall()
            return
        self._log.warning("adapter %s looks stalled (%s); recovering it", self.adapter, reason)
        try:
            ok = await self._recover(self.adapter)
        except Exception:  # noqa: BLE001 - a recovery that raises must not stop the links
            self._log.exception("adapter %s: recovery raised", self.adapter)
            ok = False
        if ok:
            self._recoveries += 1
            self._log.warning("adapter %s recovered", self.adapter)
        else:
            self._failures += 1
            self._log.warning("adapter %s: recovery did not succeed", self.adapter)
        self._forget_stall()

    def _forget_stall(self) -> None:
        """Start counting afresh: the next stall needs another ``silence_s`` of silence."""
        self._silent_s = 0.0
        self._scan_since = self._clock()
        self._scan_errors = 0
