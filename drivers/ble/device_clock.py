"""Maps a device's own clock (Polar PMD nanoseconds) to UTC, with a drift estimate.

Each frame gives one pair (device time of its last sample, time the gateway received it). The
difference is the clock offset plus a delivery delay that is never negative, so the smallest
difference over a sliding window is the best offset estimate (the lower envelope; the delay of
the fastest packet). The window slides, so a device clock that drifts is followed.
"""

from __future__ import annotations

from collections import deque


class DeviceClock:
    """Offset between one device's clock and UTC, from the lower envelope of delivery delays."""

    def __init__(self, window_s: float = 60.0) -> None:
        self._window_s = window_s
        self._minima: deque[tuple[float, float]] = deque()  # (device_s, offset_s), offsets rising
        self._first: tuple[float, float] | None = None

    @property
    def ready(self) -> bool:
        """Whether at least one pair has been seen."""
        return bool(self._minima)

    def observe(self, device_s: float, receive_s: float) -> None:
        """Add one (device time, receive time) pair."""
        offset = receive_s - device_s
        while self._minima and self._minima[-1][1] >= offset:
            self._minima.pop()
        self._minima.append((device_s, offset))
        while self._minima[0][0] < device_s - self._window_s:
            self._minima.popleft()
        if self._first is None:
            self._first = (device_s, offset)

    def to_utc(self, device_s: float) -> float:
        """``device_s`` on the UTC time line."""
        return device_s + self._minima[0][1]

    @property
    def offset_s(self) -> float | None:
        """Current offset estimate (UTC minus device time)."""
        return self._minima[0][1] if self._minima else None

    @property
    def drift_ppm(self) -> float | None:
        """How fast the offset moved since the first pair, in parts per million."""
        if self._first is None or not self._minima:
            return None
        device_s, offset = self._minima[0]
        elapsed = device_s - self._first[0]
        if elapsed < 1.0:
            return None
        return (offset - self._first[1]) / elapsed * 1e6
