"""``GET /metrics``: the daemon's statistics in the Prometheus text format (prometheus-client).

Built from one statistics snapshot per scrape, so every figure of a scrape belongs together.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from gateway.loop_lag import BUCKETS_S

if TYPE_CHECKING:
    from collections.abc import Iterator

    from prometheus_client.core import Metric

    from gateway.daemon_statistics import DaemonStatistics


class _Snapshot(Collector):
    def __init__(self, stats: DaemonStatistics) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        yield from _devices(self._stats)
        yield from _sinks(self._stats)
        yield from _gateway(self._stats)
        yield from _field(self._stats)


def exposition(stats: DaemonStatistics) -> bytes:
    """The exposition text of one snapshot."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(stats))
    return generate_latest(registry)


def _devices(stats: DaemonStatistics) -> Iterator[Metric]:
    per_device = {
        "samples": CounterMetricFamily(
            "wgw_device_samples", "waveform samples received", labels=["device"]
        ),
        "readings": CounterMetricFamily(
            "wgw_device_readings", "vitals readings received", labels=["device"]
        ),
        "decode_errors": CounterMetricFamily(
            "wgw_device_decode_errors", "malformed packets counted and dropped", labels=["device"]
        ),
        "connects": CounterMetricFamily(
            "wgw_device_connects", "connections made", labels=["device"]
        ),
        "links_lost": CounterMetricFamily(
            "wgw_device_links_lost", "connections lost", labels=["device"]
        ),
    }
    per_stream = {
        "gaps": CounterMetricFamily(
            "wgw_stream_gaps", "stretches with no data found", labels=["device", "stream"]
        ),
        "gaps_filled": CounterMetricFamily(
            "wgw_stream_gaps_filled",
            "gaps the device's records filled (backfill)",
            labels=["device", "stream"],
        ),
        "backfilled": CounterMetricFamily(
            "wgw_stream_backfilled_readings",
            "readings fetched from the device's memory",
            labels=["device", "stream"],
        ),
    }
    connected = GaugeMetricFamily("wgw_device_connected", "1 while connected", labels=["device"])
    battery = GaugeMetricFamily("wgw_device_battery_percent", "battery level", labels=["device"])
    rssi = GaugeMetricFamily("wgw_device_rssi_dbm", "signal strength", labels=["device"])
    for d in stats.devices:
        for name, family in per_device.items():
            family.add_metric([d.device_id], getattr(d, name))
        for stream in d.streams:
            for name, family in per_stream.items():
                family.add_metric([d.device_id, stream.stream], getattr(stream, name))
        connected.add_metric([d.device_id], float(d.connected))
        if d.battery_pct is not None:
            battery.add_metric([d.device_id], d.battery_pct)
        if d.rssi_dbm is not None:
            rssi.add_metric([d.device_id], d.rssi_dbm)
    yield from per_device.values()
    yield from per_stream.values()
    yield from (connected, battery, rssi)


def _sinks(stats: DaemonStatistics) -> Iterator[Metric]:
    backlog = GaugeMetricFamily("wgw_sink_backlog_rows", "rows waiting for a sink", labels=["sink"])
    size = GaugeMetricFamily("wgw_sink_backlog_bytes", "payload bytes waiting", labels=["sink"])
    age = GaugeMetricFamily(
        "wgw_sink_backlog_oldest_seconds", "age of the oldest waiting row", labels=["sink"]
    )
    dead = GaugeMetricFamily("wgw_sink_dead_letters", "rows parked for a person", labels=["sink"])
    for sink, b in stats.outbox.backlog.items():
        backlog.add_metric([sink], b.pending)
        size.add_metric([sink], b.pending_bytes)
        dead.add_metric([sink], b.dead_letters)
        if b.oldest_age_s is not None:
            age.add_metric([sink], b.oldest_age_s)
    yield from (backlog, size, age, dead)
    upload = stats.health_upload
    yield CounterMetricFamily(
        "wgw_upload_requests", "health upload requests", value=upload.requests
    )
    yield CounterMetricFamily(
        "wgw_upload_records", "health records accepted", value=upload.records_uploaded
    )
    yield CounterMetricFamily("wgw_upload_retries", "health upload retries", value=upload.retries)
    yield GaugeMetricFamily(
        "wgw_upload_drain_eta_seconds",
        "estimated time to upload the backlog",
        value=stats.health_upload_drain_eta_s,
    )
    if stats.health_upload.quota is not None:
        limit, remaining, reset_s = stats.health_upload.quota
        yield GaugeMetricFamily(
            "wgw_upload_quota_remaining",
            "requests left in the plan's tightest window",
            value=remaining,
        )
        yield GaugeMetricFamily(
            "wgw_upload_quota_limit", "that window's request limit", value=limit
        )
        yield GaugeMetricFamily(
            "wgw_upload_quota_reset_timestamp_seconds",
            "when that window starts afresh (epoch)",
            value=reset_s,
        )
    if stats.mqtt is not None:
        yield GaugeMetricFamily(
            "wgw_mqtt_connected", "1 while connected", value=float(stats.mqtt.connected)
        )
        yield CounterMetricFamily(
            "wgw_mqtt_published", "messages the broker confirmed", value=stats.mqtt.published
        )


def _field(stats: DaemonStatistics) -> Iterator[Metric]:
    labels = ["device", "stream"]
    rate = GaugeMetricFamily(
        "wgw_stream_rate_hz", "samples (readings) per second, recent", labels=labels
    )
    nominal = GaugeMetricFamily(
        "wgw_stream_nominal_hz", "the configured sample rate", labels=labels
    )
    age = GaugeMetricFamily(
        "wgw_stream_data_age_seconds", "since the stream's last sample", labels=labels
    )
    for r in stats.rates:
        key = [r.device_id, r.stream]
        if r.rate_hz is not None:
            rate.add_metric(key, r.rate_hz)
        if r.nominal_hz is not None:
            nominal.add_metric(key, r.nominal_hz)
        if r.data_age_s is not None:
            age.add_metric(key, r.data_age_s)
    alert = GaugeMetricFamily("wgw_alert_active", "1 per active alert", labels=["kind", "subject"])
    for a in stats.alerts:
        alert.add_metric([a.kind, a.subject], 1.0)
    yield from (rate, nominal, age, alert)


def _gateway(stats: DaemonStatistics) -> Iterator[Metric]:
    evicted = CounterMetricFamily(
        "wgw_outbox_evicted", "rows evicted by retention", labels=["kind"]
    )
    for kind, count in stats.outbox.evicted.items():
        evicted.add_metric([kind], count)
    yield evicted
    yield GaugeMetricFamily(
        "wgw_outbox_used_bytes", "bytes of data in the outbox", value=stats.outbox.used_bytes
    )
    yield GaugeMetricFamily(
        "wgw_outbox_storage_full",
        "1 while the disk is full",
        value=float(stats.outbox.storage_full),
    )
    dropped = CounterMetricFamily(
        "wgw_dropped",
        "items the gateway let go of, by where and why (outbox: records not kept)",
        labels=["where", "reason"],
    )
    for drop in stats.dropped:
        dropped.add_metric([drop.where, drop.reason], drop.count)
    yield dropped
    yield GaugeMetricFamily(
        "wgw_frame_queue_high_water",
        "the most frames that waited for the store at once",
        value=stats.frame_queue_high_water,
    )
    yield GaugeMetricFamily(
        "wgw_outbox_store_failing",
        "1 while the disk refuses writes (I/O errors, read-only)",
        value=float(stats.outbox.store_failing is not None),
    )
    yield GaugeMetricFamily(
        "wgw_outbox_held_records",
        "records in memory waiting for a failing store",
        value=stats.outbox.held,
    )
    yield CounterMetricFamily(
        "wgw_outbox_set_aside_files",
        "unreadable parts of the store set aside at open, since it was created",
        value=stats.outbox.set_aside_files,
    )
    yield GaugeMetricFamily(
        "wgw_clock_synchronised",
        "1 while the kernel says the clock is synchronised",
        value=float(bool(stats.clock_synced)),
    )
    yield CounterMetricFamily(
        "wgw_clock_jumps", "wall-clock jumps since start", value=stats.clock_jumps
    )
    if stats.adapter is not None:
        a = stats.adapter
        yield CounterMetricFamily(
            "wgw_adapter_stalls", "times the adapter looked stalled", value=a.stalls
        )
        yield CounterMetricFamily(
            "wgw_adapter_recoveries", "adapter recoveries that worked", value=a.recoveries
        )
        yield CounterMetricFamily(
            "wgw_adapter_recovery_failures",
            "adapter recoveries that did not",
            value=a.recovery_failures,
        )
        yield GaugeMetricFamily(
            "wgw_adapter_silent_scan_seconds",
            "scanning time since the last advertisement",
            value=a.silent_scan_s,
        )
    yield GaugeMetricFamily(
        "wgw_loop_lag_seconds", "how late the event loop ran a timer", value=stats.loop_lag_s
    )
    yield GaugeMetricFamily(
        "wgw_loop_lag_max_seconds",
        "the worst event loop lag of the last minute",
        value=stats.loop_lag_max_s,
    )
    if stats.loop_lag_counts:
        bounds = map(floatToGoString, (*BUCKETS_S, float("inf")))
        buckets = list(zip(bounds, itertools.accumulate(stats.loop_lag_counts), strict=True))
        yield HistogramMetricFamily(
            "wgw_loop_lag_observed_seconds",
            "event loop lag samples since start (every 0.5 s)",
            buckets=buckets,
            sum_value=stats.loop_lag_sum_s,
        )
    yield GaugeMetricFamily("wgw_asyncio_tasks", "asyncio tasks alive", value=stats.tasks)
