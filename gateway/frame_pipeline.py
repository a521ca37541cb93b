"""Between the links and the outbox: each frame in UTC, labelled, offered live, then stored.

Links ``put`` frames on one bounded queue (full policy: block, so a slow store slows decoding,
and each link's own queue absorbs the radio). One task takes them: ``_in_utc``, the study
labels, one ``Reading`` for the live consumers (before any storage work), then ``Outbox.put``.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import TYPE_CHECKING, Final

from drivers.bounded import BoundedQueue, FullPolicy
from drivers.frames import Frame, GapMarker
from gateway import codec
from gateway.readings import Labels, Reading

if TYPE_CHECKING:
    from collections.abc import Callable

    from buffers.outbox import Outbox
    from gateway.clock_keeper import ClockKeeper
    from gateway.study import StudyContext

_QUEUE_MAX: Final = 2000


class FramePipeline:
    """The frame queue and the task that stores what it holds."""

    def __init__(self, clock: ClockKeeper) -> None:
        self._clock = clock
        self._queue: BoundedQueue[Frame | None] = BoundedQueue(_QUEUE_MAX, FullPolicy.BLOCK)
        self._live: list[tuple[Callable[[Reading], None], bool]] = []  # (consumer, history too)
        self.stored = 0
        self.stored_by_device: Counter[str] = Counter()

    @property
    def waiting(self) -> int:
        """Frames queued and not yet stored."""
        return self._queue.qsize()

    @property
    def high_water(self) -> int:
        """The most frames that waited at once."""
        return self._queue.high_water

    def live(self, consumer: Callable[[Reading], None], *, backfilled: bool = False) -> None:
        """Give every live reading to ``consumer`` (which must not wait) before it is stored.

        With ``backfilled``, the readings fetched from a device's memory too.
        """
        self._live.append((consumer, backfilled))

    async def put(self, frame: Frame) -> None:
        """A link's frame (its times on the monotonic clock); waits while the queue is full."""
        await self._queue.put(frame)

    async def finish(self) -> None:
        """No more frames: :meth:`run` returns once it stored those before."""
        await self._queue.put(None)

    async def run(self, outbox: Outbox, study: StudyContext) -> None:
        """Store frames until :meth:`finish`."""
        clock = self._clock
        while (frame := await self._queue.get()) is not None:
            utc = _in_utc(frame, clock.offset_s)
            participant = study.participant_for(utc.device_id, utc.t0_s)
            labels = Labels(participant, study.session_for(participant, utc.t0_s))
            reading = Reading(utc, labels)
            for consumer, history_too in self._live:
                if history_too or not reading.backfilled:  # history, not live: most skip it
                    consumer(reading)
            record = dataclasses.replace(
                codec.to_record(utc),
                clock=clock.stamp(),
                participant_id=labels.participant_id,
                session_id=labels.session_id,
            )
            await outbox.put(record)
            self.stored += 1
            self.stored_by_device[frame.device_id] += 1


def _in_utc(frame: Frame, offset_s: float) -> Frame:
    """A frame stamped on the monotonic clock, in UTC."""
    if isinstance(frame, GapMarker):
        return dataclasses.replace(frame, t0_s=frame.t0_s + offset_s, t1_s=frame.t1_s + offset_s)
    return dataclasses.replace(frame, t0_s=frame.t0_s + offset_s)
