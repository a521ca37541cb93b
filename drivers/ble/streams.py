"""Per-stream bookkeeping: sequence numbers, gap detection, expected against received units."""

from __future__ import annotations

from dataclasses import dataclass

from drivers.frames import GapMarker


@dataclass(frozen=True, slots=True)
class StreamStatistics:
    """One stream of one device, for status pages and metrics.

    ``units`` are samples for waveforms, readings for vitals; ``expected_units`` is the
    nominal rate times the time the stream was started (waveforms only).
    """

    stream: str
    frames: int
    units: int
    expected_units: int | None
    gaps: int
    decode_errors: int
    last_time_s: float | None
    nominal_hz: float | None = None  # waveforms: the configured sample rate
    gap_s: float = 0.0  # stream time the gaps span
    gaps_filled: int = 0  # gaps the device's records filled (backfill)
    filled_s: float = 0.0
    backfilled: int = 0  # readings fetched from the device's memory


class StreamTracker:
    """Numbers the frames of one stream and notices where data is missing."""

    def __init__(self, device_id: str, stream: str, rate_hz: float | None = None) -> None:
        self.device_id = device_id
        self.stream = stream
        self.rate_hz = rate_hz
        self.frames = 0
        self.units = 0
        self.gaps = 0
        self.decode_errors = 0
        self.backfilled = 0  # readings fetched from the device's memory
        self.gap_s = 0.0
        self.gaps_filled = 0
        self.filled_s = 0.0
        self.active_s = 0.0  # time the stream was started, for expected units
        self._seq = 0
        self._last_end_s: float | None = None
        self._last_device_end_s: float | None = None
        self._pending: str | None = None
        self._resumed_s: float | None = None  # the store's data ended here, before this start

    def next_seq(self) -> int:
        """The next frame's sequence number (continues across reconnects)."""
        seq = self._seq
        self._seq += 1
        return seq

    def mark(self, reason: str) -> None:
        """Something broke the stream (the first cause is kept until data comes back)."""
        if self._last_end_s is not None and self._pending is None:
            self._pending = reason

    def malformed(self) -> None:
        """A notification of this stream was dropped as malformed."""
        self.decode_errors += 1
        self.mark("malformed")

    def link_lost(self) -> None:
        """The link dropped (a stream with a device clock may still turn out complete)."""
        self.mark("link_lost")

    def resume(self, stored_end_s: float) -> None:
        """The store's data of this stream ends at ``stored_end_s`` (before this start).

        The first live data marks the time from there as a gap: ``restart``, the gateway was
        not receiving (stopped, crashed or powered off; the device may also have been out of
        reach for part of it). What a crash lost before it wrote is inside that gap.
        """
        self._resumed_s = stored_end_s

    @property
    def last_end_s(self) -> float | None:
        """The end of the newest data accounted for."""
        return self._last_end_s

    def complete(self) -> None:
        """The device's records prove nothing is missing up to now: no gap is pending."""
        self._pending = None

    def filled(self, gap: GapMarker) -> None:
        """The device's records filled ``gap``."""
        self.gaps_filled += 1
        self.filled_s += gap.t1_s - gap.t0_s

    def data(
        self,
        t0_s: float,
        t_end_s: float,
        units: int,
        device_t0_s: float | None = None,
        *,
        backfilled: bool = False,
    ) -> GapMarker | None:
        """Account for a frame covering ``[t0_s, t_end_s)``; return the gap before it, if any.

        Args:
            t0_s: UTC time of the frame's first unit.
            t_end_s: UTC time just after its last unit.
            units: Samples or readings in it.
            device_t0_s: The first unit's time on the device's own clock, when it has one:
                a jump there is a loss even if no notification was seen to fail.
            backfilled: Fetched from the device's memory (counted apart from live data).
        """
        if self._resumed_s is not None and not backfilled:  # this run's first live data
            gap = self._restart_gap(t0_s)
        else:
            gap = self._gap(t0_s, device_t0_s)
        self._pending = None
        self._last_end_s = t_end_s
        if device_t0_s is not None and self.rate_hz:
            self._last_device_end_s = device_t0_s + units / self.rate_hz
        if backfilled:
            self.backfilled += units
        else:
            self.frames += 1
            self.units += units
        return gap

    def _gap(self, t0_s: float, device_t0_s: float | None) -> GapMarker | None:
        """The gap a frame at ``t0_s`` closes, if something broke the stream before it."""
        reason = self._pending
        if device_t0_s is not None and self._last_device_end_s is not None and self.rate_hz:
            # The device's own clock is the arbiter: continuous means nothing is missing,
            # whatever happened to the link; a jump (either way: a reboot) means a gap.
            jump_s = device_t0_s - self._last_device_end_s
            if abs(jump_s) <= 0.5 / self.rate_hz:
                reason = None
            elif reason is None:
                reason = "lost"
        if reason is None or self._last_end_s is None:
            return None
        return self._opened(self._last_end_s, max(t0_s, self._last_end_s), reason)

    def _opened(self, t0_s: float, t1_s: float, reason: str) -> GapMarker:
        gap = GapMarker(self.device_id, self.stream, self.gaps, t0_s, t1_s, reason)
        self.gaps += 1
        self.gap_s += gap.t1_s - gap.t0_s
        return gap

    def _restart_gap(self, t0_s: float) -> GapMarker | None:
        """The gap from the stored data's end (or records fetched since) to ``t0_s``, if any."""
        assert self._resumed_s is not None
        start_s = self._resumed_s
        if self._last_end_s is not None:  # records fetched from the device since the start
            start_s = max(start_s, self._last_end_s)
        self._resumed_s = None
        # a waveform placed again by a newly learnt clock may start a fraction of a sample off
        if t0_s - start_s <= (0.5 / self.rate_hz if self.rate_hz else 0.0):
            return None
        return self._opened(start_s, t0_s, "restart")

    def statistics(self) -> StreamStatistics:
        """A snapshot of this stream's counters."""
        expected = round(self.active_s * self.rate_hz) if self.rate_hz else None
        return StreamStatistics(
            self.stream,
            self.frames,
            self.units,
            expected,
            self.gaps,
            self.decode_errors,
            self._last_end_s,
            self.rate_hz,
            self.gap_s,
            self.gaps_filled,
            self.filled_s,
            self.backfilled,
        )
