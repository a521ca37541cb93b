"""What the daemon reports: one frozen snapshot for the status API, metrics, the demo, tests.

Its own module so that the readers of a snapshot (``gateway.http.api``, ``gateway.http.metrics``)
need not import the daemon that makes it (they formed an import circle with it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from buffers.records import OutboxStatistics
    from drivers.ble.adapter import AdapterStatistics
    from drivers.ble.link_spec import LinkStatistics
    from gateway.alerts import Alert, StreamRate
    from gateway.sinks import conversion, health_upload, mqtt
    from gateway.sinks.lsl import LslStatistics


@dataclass(frozen=True, slots=True)
class Drop:
    """Items let go of at one place for one reason, since start (``wgw_dropped_total``).

    ``where``: ``link_queue`` (a device's notification queue, drop-newest), ``link_decode``
    (malformed bytes), ``mqtt_live`` (the live lanes: full, or stale after a reconnect; what
    they carry still goes by the backlog, but for raw waveforms), ``live_page``, ``outbox``
    (``storage_full``, ``store_failing``: records not kept; ``duplicate``: held already),
    ``lsl`` (the LSL lane's queue was full: the outbox kept them all the same).
    """

    where: str
    reason: str
    count: int


@dataclass(frozen=True, slots=True)
class DaemonStatistics:
    """Everything the status API, the demo and tests show."""

    devices: tuple[LinkStatistics, ...]
    frames_stored: int
    stored_by_device: dict[str, int]
    outbox: OutboxStatistics
    health_upload: health_upload.HealthUploadStatistics
    health_upload_drain_eta_s: float  # until the waiting readings are uploaded, estimated
    mqtt: mqtt.MqttStatistics | None
    conversion: conversion.ConversionStatistics | None
    clock_offset_s: float  # UTC minus the monotonic clock, now
    clock_synced: bool | None  # the kernel's word (None: it cannot say)
    clock_jumps: int  # since start; each corrected the untrusted rows
    # devices whose own clock (PMD timestamps) disagrees with ours beyond
    # clock.device_disagreement_s: our UTC minus theirs, in seconds
    clock_disagreements_s: dict[str, float]
    adapter: AdapterStatistics | None  # None until the links are built
    loop_lag_s: float  # how late the event loop ran a timer, latest
    loop_lag_max_s: float  # and the worst of the last minute
    rates: tuple[StreamRate, ...]  # per device and stream: recent samples/s against nominal
    alerts: tuple[Alert, ...]  # active: stalled streams, growing backlogs
    dropped: tuple[Drop, ...] = ()  # every drop, by where and why
    frame_queue_high_water: int = 0  # the most frames waiting for the store at once
    # loop lag samples since start per bucket of gateway.loop_lag.BUCKETS_S (+Inf last)
    loop_lag_counts: tuple[int, ...] = ()
    loop_lag_sum_s: float = 0.0
    lsl: LslStatistics | None = None  # with lsl.enabled
    tasks: int = 0  # asyncio tasks alive


def drops(
    devices: tuple[LinkStatistics, ...],
    outbox: OutboxStatistics,
    mqtt_stats: mqtt.MqttStatistics | None,
    live_page: int,
    lsl: LslStatistics | None = None,
) -> tuple[Drop, ...]:
    """Every item the gateway let go of, by where and why (``wgw_dropped_total``)."""
    found = [
        Drop("link_queue", "queue_full", sum(d.dropped_queue_full for d in devices)),
        Drop("link_decode", "malformed", sum(d.decode_errors for d in devices)),
        Drop("live_page", "queue_full", live_page),
        Drop("outbox", "duplicate", outbox.duplicates),
        *(Drop("outbox", reason, n) for reason, n in sorted(outbox.discarded.items())),
    ]
    if mqtt_stats is not None:
        found.append(Drop("mqtt_live", "queue_full", mqtt_stats.live_dropped))
        found.append(Drop("mqtt_live", "stale", mqtt_stats.live_stale))
    if lsl is not None:
        found.append(Drop("lsl", "queue_full", lsl.dropped))
    return tuple(found)
