"""The daemon's time: UTC for what it stores, jumps of the wall clock corrected in the outbox.

Links stamp notifications on the monotonic clock; the pipeline adds the offset kept here. Every
``clock.check_interval_s`` the wall clock is read: a jump moves the rows stamped with an
untrusted offset (``Outbox.correct_clock``), and each device's own clock is compared with ours.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import TYPE_CHECKING

from buffers.errors import StorageError
from buffers.records import ClockStamp
from gateway.wallclock import ClockJump, ClockWatch

if TYPE_CHECKING:
    from collections.abc import Callable

    from buffers.outbox import Outbox
    from drivers.ble.link_spec import LinkStatistics
    from gateway.config import ClockConfig
    from gateway.wallclock import WallClock

log = logging.getLogger(__name__)


class ClockKeeper:
    """The offset from the monotonic clock to UTC, its trust, and the jumps seen since start."""

    def __init__(self, wallclock: WallClock, config: ClockConfig) -> None:
        self.wallclock = wallclock
        self._config = config
        self.now = wallclock.read()
        self.jumps = 0
        self.disagreements_s: dict[str, float] = {}

    @property
    def offset_s(self) -> float:
        """UTC minus the monotonic clock, as last read."""
        return self.now.offset_s

    def utc_now(self) -> float:
        """Now, on the same time line as the stored samples."""
        return self.wallclock.mono() + self.now.offset_s

    def stamp(self) -> ClockStamp:
        """How a time taken now is converted: boot, offset, trusted or not."""
        return ClockStamp(self.wallclock.boot_id, self.now.offset_s, self.now.synced)

    def in_utc(self, stats: LinkStatistics) -> LinkStatistics:
        """A link's statistics with its times in UTC (links keep the monotonic clock)."""
        offset_s = self.now.offset_s
        streams = tuple(
            dataclasses.replace(s, last_time_s=s.last_time_s + offset_s)
            if s.last_time_s is not None
            else s
            for s in stats.streams
        )
        device = stats.clock_offset_s + offset_s if stats.clock_offset_s is not None else None
        return dataclasses.replace(stats, streams=streams, clock_offset_s=device)

    async def run(
        self, outbox: Outbox, device_states: Callable[[], tuple[LinkStatistics, ...]]
    ) -> None:
        """Read the wall clock every check; on a jump, correct the untrusted rows."""
        watch = ClockWatch(self.now, self._config.jump_threshold_s)
        owed: ClockJump | None = None  # a correction the outbox could not make yet
        while True:
            await asyncio.sleep(self._config.check_interval_s)
            reading = self.wallclock.read()
            jump = watch.check(reading)
            self.now = reading
            self._cross_check(device_states())
            if jump is not None:
                self.jumps += 1
                owed = (
                    jump
                    if owed is None
                    else dataclasses.replace(jump, offset_before_s=owed.offset_before_s)
                )
            if owed is None:
                continue
            try:
                moved = await outbox.correct_clock(
                    self.wallclock.boot_id,
                    reading.offset_s,
                    at_mono_s=owed.at_mono_s,
                    offset_before_s=owed.offset_before_s,
                    synced=reading.synced,
                )
            except StorageError as exc:  # a full disk: tried again at the next check
                log.error("clock correction postponed: %s", exc)
                continue
            log.warning(
                "the wall clock jumped by %+.3f s (synchronised: %s): %d untrusted rows corrected",
                reading.offset_s - owed.offset_before_s,
                reading.synced,
                moved,
            )
            owed = None

    def _cross_check(self, states: tuple[LinkStatistics, ...]) -> None:
        """Compare each device's own clock with ours; say when one starts to disagree.

        Devices that agree with one another but not with the gateway point at the gateway's
        clock; one device alone off points at that device.
        """
        limit = self._config.device_disagreement_s
        for state in states:
            offset = state.clock_offset_s
            if offset is None or abs(offset) <= limit:
                self.disagreements_s.pop(state.device_id, None)
                continue
            if state.device_id not in self.disagreements_s:
                log.warning(
                    "%s: its clock and the gateway's disagree by %+.1f s (gateway synchronised:"
                    " %s)",
                    state.device_id,
                    offset,
                    self.now.synced,
                )
            self.disagreements_s[state.device_id] = round(offset, 3)
