"""The watchdog: streams that go silent while the link stays up (a known strap failure).

Such a stream is subscribed again; if it stays silent, the session ends and the link is rebuilt.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from bleak.exc import BleakError

if TYPE_CHECKING:
    import logging
    from collections.abc import Awaitable, Callable


class Watchdog:
    """The watched streams of one connection and when each last sent a frame (monotonic).

    A stream silent for ``silence_s`` is subscribed again (``resubscribe``) and ``silent`` is
    told; silent for another ``silence_s``, ``run`` returns with ``stalled`` set.
    """

    def __init__(
        self,
        device_id: str,
        *,
        silence_s: float,
        interval_s: float,
        gatt_timeout_s: float,
        log: logging.LoggerAdapter[logging.Logger],
    ) -> None:
        self._device_id = device_id
        self._silence_s = silence_s
        self._interval_s = interval_s
        self._gatt_timeout_s = gatt_timeout_s
        self._log = log
        self._watched: dict[str, float] = {}
        self._restart: list[str] = []  # streams the device said it stopped (once each)
        self.stalled: str | None = None
        self.resubscribes = 0
        self.restarts = 0

    def new_session(self) -> None:
        """A new connection: nothing watched yet, nothing stalled."""
        self._watched = {}
        self._restart = []
        self.stalled = None

    def restart(self, stream: str) -> None:
        """The device stopped ``stream`` on its own: start it again at the next round."""
        if stream not in self._restart:
            self._restart.append(stream)

    def watch(self, stream: str) -> None:
        """Expect frames of ``stream`` from now on."""
        self._watched[stream] = time.monotonic()

    def heard(self, stream: str) -> None:
        """A frame of ``stream`` came."""
        if stream in self._watched:
            self._watched[stream] = time.monotonic()

    async def run(
        self,
        resubscribe: Callable[[str], Awaitable[None]],
        silent: Callable[[str], None],
        ended: asyncio.Event | None = None,
    ) -> None:
        """Watch until a stream stays silent after a new subscription, or one fails; then return.

        ``stalled`` names the stream when it stayed silent. ``ended``: the link is gone, return
        (also when the cancel that came with it was lost: Python 3.11's ``asyncio.timeout`` can
        take an outside cancel arriving as it expires for its own, and a link's task then
        waited for ever for its watchdog, about one adapter-stall test in forty-five).
        """
        retried_at: dict[str, float] = {}
        while ended is None or not ended.is_set():
            await asyncio.sleep(self._interval_s)
            if ended is not None and ended.is_set():
                return
            while self._restart:
                stream = self._restart.pop(0)
                self.restarts += 1
                if stream in self._watched:  # its silence is counted from the new start
                    self._watched[stream] = time.monotonic()
                try:
                    async with asyncio.timeout(self._gatt_timeout_s):
                        await resubscribe(stream)
                except (BleakError, TimeoutError):
                    return
            now = time.monotonic()
            for stream, last_frame in list(self._watched.items()):
                if last_frame > retried_at.get(stream, now):
                    del retried_at[stream]  # data came back after the new subscription
                if now - max(last_frame, retried_at.get(stream, last_frame)) < self._silence_s:
                    continue
                if stream in retried_at:
                    self.stalled = stream
                    return
                retried_at[stream] = now
                self.resubscribes += 1
                self._log.warning(
                    "%s: %s silent for %.1f s; subscribing again",
                    self._device_id,
                    stream,
                    now - last_frame,
                )
                silent(stream)
                try:
                    async with asyncio.timeout(self._gatt_timeout_s):
                        await resubscribe(stream)
                except (BleakError, TimeoutError):
                    return
