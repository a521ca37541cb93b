"""What the daemon is made of, built from its settings: the outbox, one link per device, sinks.

Only construction lives here; running, statistics and shutdown are the daemon's.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from buffers.errors import StorageError
from buffers.outbox import Outbox
from drivers.ble.adapter import AdapterWatch
from drivers.ble.backfill import RECORDED
from drivers.ble.link import DeviceLink
from drivers.ble.link_spec import DeviceSpec, LinkStatistics, LinkTimings
from drivers.polar.pmd import StreamSettings
from gateway.clients.limiter import ClientRateLimiter
from gateway.clients.tcm import TcmClient
from gateway.rate_limits import PLANS
from gateway.sinks import health_upload, mqtt

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    import aiohttp

    from drivers.ble.backends import BleBackends
    from drivers.ble.shared_scan import SharedScan
    from drivers.frames import Frame
    from gateway.alerts import Alert
    from gateway.config import DeviceConfig, Settings
    from gateway.sinks import conversion
    from gateway.study import StudyContext

log = logging.getLogger(__name__)


def outbox_for(settings: Settings) -> Outbox:
    """The outbox, with a backlog for each sink the config switches on."""
    s = settings
    subscriptions = {health_upload.SINK: health_upload.wants}
    if s.mqtt.enabled:
        subscriptions[mqtt.SINK] = mqtt.wants
    if s.conversion.enabled:
        from gateway.sinks import conversion  # noqa: PLC0415 - see build_sinks

        subscriptions[conversion.SINK] = conversion.wants
    return Outbox(
        s.storage.path,
        subscriptions,
        flush_interval_ms=s.storage.flush_interval_ms,
        flush_max_rows=s.storage.flush_max_rows,
        queue_max_rows=s.storage.queue_max_rows,
        synchronous=s.storage.synchronous,
        max_db_mb=s.storage.max_db_mb,
        index_interval_s=s.storage.index_interval_s,
    )


def adapter_watch(settings: Settings, backends: BleBackends) -> AdapterWatch:
    """The adapter's watch (stall recovery where the backend can recover it)."""
    ble = settings.ble
    return AdapterWatch(
        ble.adapter,
        backends.recover_adapter if ble.adapter_recovery else None,
        silence_s=ble.adapter_silence_s,
        recovery_interval_s=ble.adapter_recovery_interval_s,
    )


async def build_links(
    settings: Settings,
    backends: BleBackends,
    outbox: Outbox,
    emit: Callable[[Frame], Awaitable[None]],
    *,
    now: Callable[[], float],
    utc: Callable[[], float],
    adapter: AdapterWatch,
    scan: SharedScan,
    study: StudyContext,
) -> list[DeviceLink]:
    """One supervised link per configured device.

    They share the adapter's connection slots, its scan and its one connect at a time.
    """
    ble = settings.ble
    timings = LinkTimings(
        scan_timeout_s=ble.scan_timeout_s,
        connect_timeout_s=ble.connect_timeout_s,
        gatt_timeout_s=ble.gatt_timeout_s,
        reconnect_min_s=ble.reconnect_min_s,
        reconnect_max_s=ble.reconnect_max_s,
        notification_queue_max=ble.notification_queue_max,
        stream_silence_s=ble.stream_silence_s,
    )
    slots = asyncio.Semaphore(ble.max_connections)
    connecting = asyncio.Lock()
    links = []
    for device in settings.devices:
        cursors = await _record_cursors(outbox, device.id) if ble.backfill else None
        ends = await _stored_ends(outbox, device.id)
        links.append(
            DeviceLink(
                _device_spec(device, cursors, ends),
                backends,
                emit,
                timings,
                now=now,
                connection_slots=slots,
                connecting=connecting,
                scan=scan,
                adapter=adapter,
                utc=utc,
                note=functools.partial(study.device_note, device.id),
            )
        )
    return links


async def _record_cursors(outbox: Outbox, device_id: str) -> dict[str, int | None]:
    """Where a device's record fetches start: after the newest record the outbox holds.

    A store that cannot be read now: from the first record (the outbox drops what it holds
    already, by each record's device timestamp).
    """
    streams = {recorded.stream for recorded in RECORDED.values()}
    try:
        return {stream: await outbox.cursor(device_id, stream) for stream in streams}
    except StorageError as exc:
        log.warning("%s: record cursors unreadable (%s): fetching from the first", device_id, exc)
        return {}


async def _stored_ends(outbox: Outbox, device_id: str) -> dict[str, float]:
    """Where a device's stored streams end: each one's first data marks the time since a gap.

    A store that cannot be read now: none (no ``restart`` gaps this run).
    """
    try:
        return await outbox.stream_ends(device_id)
    except StorageError as exc:
        log.warning("%s: where its stored data ends is unreadable (%s)", device_id, exc)
        return {}


def _device_spec(
    device: DeviceConfig, cursors: dict[str, int | None] | None, ends: dict[str, float]
) -> DeviceSpec:
    pmd_streams = tuple(
        StreamSettings(
            p.measurement, p.sample_rate_hz or 0, p.resolution_bits or 0, p.channels or 0, p.range
        )
        for p in device.pmd
    )
    passkey = device.passkey.get_secret_value() if device.passkey is not None else None
    return DeviceSpec(
        device.id,
        device.address,
        pmd_streams,
        cursors,
        ends,
        pairing=device.pairing,
        passkey=int(passkey) if passkey is not None else None,
        set_clock=device.set_clock,
        movesense=device.movesense,
    )


@dataclass(frozen=True, slots=True)
class Sinks:
    """The sinks the config switched on."""

    upload: health_upload.HealthUploadSink
    mqtt: mqtt.MqttSink | None
    conversion: conversion.ConversionSink | None


def build_sinks(
    settings: Settings,
    outbox: Outbox,
    session: aiohttp.ClientSession,
    *,
    device_states: Callable[[], Sequence[LinkStatistics]],
    alerts: Callable[[], Sequence[Alert]],
    on_command: Callable[[dict[str, object]], Awaitable[dict[str, object]]],
) -> Sinks:
    """The sinks the config asks for, over ``outbox`` and one HTTP session."""
    s = settings
    tcm = s.cloud.tcm
    limiter = ClientRateLimiter(
        PLANS[tcm.plan],
        state_path=tcm.rate_limit_state or s.storage.path.with_name("tcm_rate_limit.json"),
        scale=tcm.rate_limit_scale,
    )
    token_cache = s.storage.path.with_name("tcm_token.json")
    upload = health_upload.HealthUploadSink(
        outbox, TcmClient(session, tcm, limiter, token_cache=token_cache), s.sync
    )
    publisher = None
    if s.mqtt.enabled:
        publisher = mqtt.MqttSink(
            outbox,
            s.mqtt,
            s.gateway_id,
            device_states=device_states,
            alerts=alerts,
            on_command=on_command,
        )
    converter = None
    if s.conversion.enabled:
        # imported only when asked for: the signal chain's scipy costs ~65 MB of memory
        from gateway.clients.heartvoice import HeartVoiceClient  # noqa: PLC0415
        from gateway.sinks import conversion  # noqa: PLC0415

        converter = conversion.ConversionSink(
            outbox, HeartVoiceClient(session, s.cloud.heartvoice), s.conversion, s.dsp
        )
    return Sinks(upload, publisher, converter)
