"""Decoded notifications placed in time and in their stream: frames with sequence numbers and gaps.

Owns what that takes across connections: one tracker per stream, the PMD clock (device time ->
UTC, drift included), the clock of the device's stored records, the battery level, and the
count of malformed notifications no stream can own.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

from drivers.ble.backfill import RECORDED
from drivers.ble.decoding import stream_of
from drivers.ble.device_clock import DeviceClock
from drivers.ble.streams import StreamTracker
from drivers.frames import Frame, VitalReading, WaveformChunk
from drivers.polar.pmd_settings import physical

if TYPE_CHECKING:
    import logging
    from collections.abc import Callable, Mapping

    import numpy as np
    from numpy.typing import NDArray

    from drivers.ble.decoding import Vital, Waveform
    from drivers.errors import DecodeError
    from drivers.polar.pmd import StreamSettings

_DECODE_LOG_INTERVAL_S: Final = 10.0
# streams whose readings carry the device's own timestamp: the same reading received live and
# fetched from the device's records again is recognised by it
TIMESTAMPED: Final = frozenset(r.stream for r in RECORDED.values())


class Framer:
    """One device's streams: frames out of decoded notifications.

    ``heard(stream)`` is told of every frame (the watchdog listens).
    """

    def __init__(
        self,
        device_id: str,
        pmd_streams: tuple[StreamSettings, ...],
        heard: Callable[[str], None],
        log: logging.LoggerAdapter[logging.Logger],
        resumed: Mapping[str, float] | None = None,
    ) -> None:
        self.device_id = device_id
        self._resumed = resumed or {}
        self.trackers: dict[str, StreamTracker] = {}
        for s in pmd_streams:
            # PPI intervals are readings (a vitals stream), not samples at a rate
            self.tracker(s.measurement).rate_hz = (
                s.sample_rate_hz if s.measurement != "ppi" else None
            )
        self.device_clock = DeviceClock()  # PMD's
        self.record_clock = DeviceClock()  # the stored records' (Current Time, live stamps)
        self.battery_pct: int | None = None
        self.unattributed_errors = 0
        self._heard = heard
        self._log = log
        self._last_decode_log_s = -_DECODE_LOG_INTERVAL_S

    def tracker(self, stream: str) -> StreamTracker:
        """The stream's tracker (made at its first frame)."""
        tracker = self.trackers.get(stream)
        if tracker is None:
            tracker = self.trackers[stream] = StreamTracker(self.device_id, stream)
            if stream in self._resumed:
                tracker.resume(self._resumed[stream])
        return tracker

    def vital(self, vital: Vital, received_s: float) -> list[Frame]:
        """A live reading (and the gap before it, if one opened)."""
        stream, values = vital.stream, vital.values
        if stream == "battery":
            battery = values["battery_pct"]
            self.battery_pct = battery if isinstance(battery, int) else None
        self._heard(stream)
        key = self._device_timestamp(stream, values, received_s)
        tracker = self.tracker(stream)
        gap = tracker.data(received_s, received_s, 1)
        reading = VitalReading(
            self.device_id, stream, tracker.next_seq(), received_s, values, source_key=key
        )
        return [gap, reading] if gap else [reading]

    def waveform(self, waveform: Waveform, received_s: float) -> list[Frame]:
        """A PMD chunk placed by the device's clock (and the gap before it, if one opened)."""
        frame, settings = waveform.frame, waveform.settings
        rate = float(settings.sample_rate_hz)
        device_first_s = frame.last_sample_utc_s - (frame.samples.shape[0] - 1) / rate
        samples = physical(frame.measurement, frame.samples, settings.factor, frame.frame_type)
        return self.samples(frame.measurement, samples, rate, device_first_s, received_s)

    def samples(
        self,
        stream: str,
        samples: NDArray[np.int32],
        rate: float,
        device_first_s: float,
        received_s: float,
    ) -> list[Frame]:
        """Samples of ``stream`` placed by the device's clock, and the gap before them.

        ``device_first_s``: the device's time of the first sample, in any epoch it keeps.
        """
        n = samples.shape[0]
        device_last_s = device_first_s + (n - 1) / rate
        self.device_clock.observe(device_last_s, received_s)
        t_last = self.device_clock.to_utc(device_last_s)
        t0 = t_last - (n - 1) / rate
        tracker = self.tracker(stream)
        if tracker.rate_hz is None:
            tracker.rate_hz = rate
        self._heard(stream)
        gap = tracker.data(t0, t_last + 1.0 / rate, n, device_t0_s=device_first_s)
        chunk = WaveformChunk(self.device_id, stream, tracker.next_seq(), t0, rate, samples)
        return [gap, chunk] if gap else [chunk]

    def malformed(self, uuid: str, data: bytes, exc: DecodeError) -> None:
        """Count a notification that broke its profile on its stream; say so now and then."""
        stream = stream_of(uuid, data)
        if stream is not None and stream in self.trackers:
            self.trackers[stream].malformed()
        else:
            self.unattributed_errors += 1
        now = time.monotonic()
        if now - self._last_decode_log_s >= _DECODE_LOG_INTERVAL_S:
            self._last_decode_log_s = now
            self._log.warning("%s: dropped a malformed notification: %s", self.device_id, exc)

    def connected_for(self, seconds: float) -> None:
        """A session ended: waveforms were started for ``seconds`` (their expected samples)."""
        for tracker in self.trackers.values():
            if tracker.rate_hz is not None:
                tracker.active_s += seconds

    def link_lost(self) -> None:
        """The link went (in notification order): every stream breaks here."""
        for tracker in self.trackers.values():
            tracker.link_lost()

    def _device_timestamp(
        self, stream: str, values: dict[str, object], received_s: float
    ) -> str | None:
        """The reading's own timestamp where its stream is recorded (it teaches the clock)."""
        stamp = values.get("timestamp") if stream in TIMESTAMPED else None
        if not isinstance(stamp, str):
            return None
        device_s = epoch_s(stamp)
        if device_s is not None:
            self.record_clock.observe(device_s, received_s)
        return stamp


def epoch_s(stamp: str) -> float | None:
    """A device timestamp (``YYYY-MM-DDTHH:MM:SS``, no zone) in seconds, read as UTC."""
    try:
        return datetime.fromisoformat(stamp).replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None
