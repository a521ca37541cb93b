"""Field alerts (stalled streams, growing backlogs, a failing store, falling behind); rates.

Evaluated every ``alerts.check_interval_s`` from the links' statistics and the outbox's
backlogs. An alert is raised once (logged as a warning) and cleared once (logged), and while
active it is in ``/api/status``, ``/metrics`` and retained on MQTT.
"""

from __future__ import annotations

import collections
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from drivers.ble.link_spec import LinkStatistics
    from gateway.config import AlertsConfig

log = logging.getLogger(__name__)

AlertKind = Literal["stream_stalled", "backlog_growing", "store_failing", "falling_behind"]

# Vitals streams whose silence means trouble (spot readings such as blood pressure come when
# the wearer takes one, so their silence means nothing).
_WATCHED_VITALS = frozenset({"heart_rate"})


@dataclass(frozen=True, slots=True)
class StreamRate:
    """One stream's recent delivery: samples (or readings) per second against nominal."""

    device_id: str
    stream: str
    rate_hz: float | None  # over the last ``rate_window_s`` (None: not enough history yet)
    nominal_hz: float | None  # waveforms: the configured rate
    data_age_s: float | None  # since the last sample (None: none yet)


@dataclass(frozen=True, slots=True)
class Alert:
    """An active alert; ``subject`` is ``device/stream`` or a sink's name."""

    kind: AlertKind
    subject: str
    since_s: float  # UTC epoch seconds
    detail: str


class FieldWatch:
    """Keeps the rate history and the alert states between evaluations."""

    def __init__(self, config: AlertsConfig) -> None:
        self._config = config
        self._started_s: float | None = None  # the first evaluation: streams without data yet
        self._history: dict[tuple[str, str], collections.deque[tuple[float, int]]] = {}
        self._rates: tuple[StreamRate, ...] = ()
        self._alerts: dict[tuple[AlertKind, str], Alert] = {}
        self._growing_since: dict[str, float] = {}
        self._last_backlog: dict[str, int] = {}
        self._dropped = 0  # notifications the links' full queues dropped, as last seen

    def rates(self) -> tuple[StreamRate, ...]:
        """Per device and stream, as of the last evaluation."""
        return self._rates

    def alerts(self) -> tuple[Alert, ...]:
        """The active alerts, oldest first."""
        return tuple(sorted(self._alerts.values(), key=lambda a: (a.since_s, a.subject)))

    def evaluate(
        self,
        devices: Iterable[LinkStatistics],
        backlogs: Mapping[str, int],
        now_s: float,
        *,
        store: str | None = None,
        frames_waiting: int = 0,
    ) -> None:
        """One evaluation at UTC ``now_s`` (device statistics with UTC times).

        ``store``: why the outbox's disk refuses writes, while it does. ``frames_waiting``:
        frames received and not yet written (a crash loses them).
        """
        if self._started_s is None:
            self._started_s = now_s
        active: dict[tuple[AlertKind, str], Alert] = {}
        if store is not None:
            self._keep(
                active, "store_failing", "outbox", self._since("store_failing", now_s), store
            )
        devices = list(devices)
        dropped = sum(d.dropped_queue_full for d in devices)
        new_drops, self._dropped = dropped - self._dropped, dropped
        if frames_waiting >= self._config.frames_waiting_max or new_drops > 0:
            detail = (
                f"{frames_waiting} frames wait to be written (a crash now loses them);"
                f" {max(0, new_drops)} notifications dropped since the last check"
            )
            self._keep(
                active, "falling_behind", "gateway", self._since("falling_behind", now_s), detail
            )
        rates = []
        for device in devices:
            for s in device.streams:
                rate = self._rate(device.device_id, s.stream, s.units, now_s)
                age = None if s.last_time_s is None else max(0.0, now_s - s.last_time_s)
                rates.append(StreamRate(device.device_id, s.stream, rate, s.nominal_hz, age))
                if s.nominal_hz is None and s.stream not in _WATCHED_VITALS:
                    continue
                silent_since = s.last_time_s if s.last_time_s is not None else self._started_s
                if now_s - silent_since >= self._config.stream_stall_s:
                    subject = f"{device.device_id}/{s.stream}"
                    why = "connected" if device.connected else "disconnected"
                    detail = f"no data for {now_s - silent_since:.0f} s ({why})"
                    self._keep(active, "stream_stalled", subject, silent_since, detail)
        for sink, pending in backlogs.items():
            since = self._growth(sink, pending, now_s)
            if since is not None and now_s - since >= self._config.backlog_growing_s:
                detail = f"{pending} rows, not shrunk for {now_s - since:.0f} s"
                self._keep(active, "backlog_growing", sink, since, detail)
        for key, alert in self._alerts.items():
            if key not in active:
                log.info("alert cleared: %s %s", alert.kind, alert.subject)
        self._alerts = active
        self._rates = tuple(rates)

    def _keep(
        self,
        active: dict[tuple[AlertKind, str], Alert],
        kind: AlertKind,
        subject: str,
        since_s: float,
        detail: str,
    ) -> None:
        if (kind, subject) not in self._alerts:
            log.warning("alert: %s %s: %s", kind, subject, detail)
        active[(kind, subject)] = Alert(kind, subject, since_s, detail)

    def _since(self, kind: AlertKind, now_s: float) -> float:
        """Since when a one-subject alert has been active (``now_s`` if it was not)."""
        previous = next((a for (k, _), a in self._alerts.items() if k == kind), None)
        return previous.since_s if previous is not None else now_s

    def _rate(self, device_id: str, stream: str, units: int, now_s: float) -> float | None:
        history = self._history.setdefault((device_id, stream), collections.deque())
        history.append((now_s, units))
        while len(history) > 2 and now_s - history[1][0] >= self._config.rate_window_s:
            history.popleft()
        (t0, u0), (t1, u1) = history[0], history[-1]
        return (u1 - u0) / (t1 - t0) if t1 > t0 else None

    def _growth(self, sink: str, pending: int, now_s: float) -> float | None:
        """Since when ``sink``'s backlog has not shrunk (None: it is empty or just shrank)."""
        previous = self._last_backlog.get(sink)
        self._last_backlog[sink] = pending
        if pending == 0 or (previous is not None and pending < previous):
            self._growing_since.pop(sink, None)
            return None
        return self._growing_since.setdefault(sink, now_s)
