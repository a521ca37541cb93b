"""The live page's feed: frames as they arrive, fanned out to every open page, never waiting.

Each page gets a bounded queue; a page that cannot keep up loses events (counted), the
gateway never slows down for it. Waveforms go out as their first channel (what the page draws),
vitals as their values; the newest vitals per device are kept for a page that opens late.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Final

from drivers.bounded import BoundedQueue, FullPolicy
from drivers.frames import VitalReading, WaveformChunk

if TYPE_CHECKING:
    from collections.abc import Iterator

    from gateway.readings import Reading

_QUEUE_MAX: Final = 500

Event = dict[str, Any]


class LiveFeed:
    """Subscribers are asyncio queues of JSON-ready events."""

    def __init__(self, queue_max: int = _QUEUE_MAX) -> None:
        self._queue_max = queue_max
        self._subscribers: set[BoundedQueue[Event]] = set()
        self._latest: dict[tuple[str, str], Event] = {}
        self.dropped = 0

    @property
    def subscribers(self) -> int:
        """Open pages."""
        return len(self._subscribers)

    def latest_vitals(self) -> list[Event]:
        """The newest reading of every device's vitals streams."""
        return list(self._latest.values())

    def offer(self, reading: Reading) -> None:
        """A live reading (times in UTC) just arrived."""
        frame = reading.frame
        if isinstance(frame, WaveformChunk):
            if not self._subscribers:
                return
            event: Event = {
                "type": "wave",
                "device_id": frame.device_id,
                "stream": frame.stream,
                "rate_hz": frame.sample_rate_hz,
                "t0_s": frame.t0_s,
                "samples": frame.samples[:, 0].tolist(),
            }
        elif isinstance(frame, VitalReading):
            event = {
                "type": "vital",
                "device_id": frame.device_id,
                "stream": frame.stream,
                "time_s": frame.t0_s,
                "values": frame.values,
            }
            self._latest[(frame.device_id, frame.stream)] = event
        else:
            return
        for queue in self._subscribers:
            if not queue.offer(event):
                self.dropped += 1

    @contextlib.contextmanager
    def subscribe(self) -> Iterator[BoundedQueue[Event]]:
        """A queue of events for one page, while the ``with`` lasts."""
        # a page that falls behind loses the newest events (counted) until it catches up
        queue: BoundedQueue[Event] = BoundedQueue(self._queue_max, FullPolicy.DROP_NEWEST)
        self._subscribers.add(queue)
        try:
            yield queue
        finally:
            self._subscribers.discard(queue)
