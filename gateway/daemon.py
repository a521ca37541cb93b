"""The daemon: opens outbox, HTTP session and status API, runs links, pipeline and sinks.

Shutdown drains in flow order: the links stop, the pipeline stores what they produced, the
outbox commits, and only then do the sinks stop (what they had not delivered stays queued).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import Counter
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any, Final

import aiohttp

from buffers.errors import StorageError
from buffers.outbox import Outbox
from buffers.records import ClockStamp
from drivers.ble.adapter import AdapterWatch
from drivers.ble.backends import PLATFORM, BleBackends, simulated
from drivers.ble.backfill import RECORDED
from drivers.ble.link import DeviceLink, DeviceSpec, LinkStatistics, LinkTimings
from drivers.bounded import BoundedQueue, FullPolicy
from drivers.frames import GapMarker
from drivers.polar.pmd import StreamSettings
from gateway import codec
from gateway.alerts import FieldWatch
from gateway.clients.limiter import ClientRateLimiter
from gateway.clients.tcm import TcmClient
from gateway.daemon_statistics import DaemonStatistics, Drop
from gateway.http.api import serve_status
from gateway.http.live_feed import LiveFeed
from gateway.loop_lag import LoopLag
from gateway.rate_limits import PLANS
from gateway.readings import Labels, Reading
from gateway.sdnotify import Notifier
from gateway.simulation import build_world, ground_truth
from gateway.sinks import health_upload, mqtt
from gateway.study import StudyContext, perform, vars_of
from gateway.wallclock import ClockJump, ClockWatch, ShiftedClock, SystemClock, WallClock

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from buffers.records import OutboxStatistics
    from drivers.frames import Frame
    from drivers.sim.world import SimWorld
    from gateway.config import DeviceConfig, Settings
    from gateway.sinks import conversion

log = logging.getLogger(__name__)

# Frames from every link to the store. Full policy: block (the link's own notification queue
# absorbs the wait, and counts what it has to drop).
_FRAME_QUEUE_MAX: Final = 2000
_STORE_RETRY_S: Final = 1.0  # a sink that met a storage error starts over no sooner


class Daemon:
    """One gateway process. ``run()`` returns after ``stop()`` once everything is drained.

    Args:
        settings: The validated configuration.
        sim_world: With ``ble.backend: sim``, the world to run against (tests pass theirs to
            script faults and read ground truth); built from config when omitted.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        sim_world: SimWorld | None = None,
        wallclock: WallClock | None = None,
    ) -> None:
        self.settings = settings
        if settings.ble.backend == "sim":
            self.sim_world: SimWorld | None = sim_world or build_world(settings.ble.sim)
            self.wallclock: WallClock = wallclock or ShiftedClock(self.sim_world.clock.now_s)
        else:
            self.sim_world = None
            self.wallclock = wallclock or SystemClock()
        self._clock_now = self.wallclock.read()
        self._clock_jumps = 0
        self._disagreements: dict[str, float] = {}
        self._stop = asyncio.Event()
        self._ready = asyncio.Event()
        # links wait here when storing falls behind: back-pressure reaches their own queues
        self._frames: BoundedQueue[Frame | None] = BoundedQueue(_FRAME_QUEUE_MAX, FullPolicy.BLOCK)
        self._frames_stored = 0
        self._stored_by_device: Counter[str] = Counter()
        self._outbox: Outbox | None = None
        self._links: list[DeviceLink] = []
        self._adapter: AdapterWatch | None = None
        self._loop_lag = LoopLag()
        self._live = LiveFeed()
        self._field = FieldWatch(settings.alerts)
        self._upload: health_upload.HealthUploadSink | None = None
        self._mqtt: mqtt.MqttSink | None = None
        self._conversion: conversion.ConversionSink | None = None
        self._study: StudyContext | None = None
        self.status_url: str | None = None
        self._final: DaemonStatistics | None = None
        self._drain_tasks: list[asyncio.Task[None]] = []
        self.abandoned: str | None = None  # what a shutdown past its bound left behind
        self.started = False  # the outbox opened

    def stop(self) -> None:
        """Ask for a drained shutdown (safe from a signal handler)."""
        self._stop.set()

    def sim_truth(self) -> list[dict[str, object]] | None:
        """The simulator's ground truth, or None on a real radio."""
        return ground_truth(self.sim_world) if self.sim_world is not None else None

    def sim_pause(self) -> bool:
        """Stop the simulated devices measuring; False on a real radio."""
        if self.sim_world is None:
            return False
        self.sim_world.pause()
        return True

    def live_feed(self) -> LiveFeed:
        """Frames as they arrive, for the live page."""
        return self._live

    def is_ready(self) -> bool:
        """Sources and sinks are running, and no stop was asked for."""
        return self._ready.is_set() and not self._stop.is_set()

    async def wait_ready(self) -> None:
        """Return once the outbox is open and every task has started."""
        await self._ready.wait()

    async def statistics(self) -> DaemonStatistics:
        """A snapshot of every counter; after ``run()`` returned, the last one it took."""
        if self._final is not None:
            return self._final
        if self._outbox is None or self._upload is None:
            msg = "the daemon has not started"
            raise RuntimeError(msg)
        outbox = await self._outbox.statistics()
        pending = outbox.backlog[health_upload.SINK].pending
        devices = self._device_states()
        mqtt_stats = self._mqtt.statistics() if self._mqtt else None
        return DaemonStatistics(
            devices=devices,
            frames_stored=self._frames_stored,
            stored_by_device=dict(self._stored_by_device),
            outbox=outbox,
            health_upload=self._upload.statistics(),
            health_upload_drain_eta_s=self._upload.drain_eta_s(pending, len(self._links)),
            mqtt=mqtt_stats,
            conversion=self._conversion.statistics() if self._conversion else None,
            clock_offset_s=self._clock_now.offset_s,
            clock_synced=self._clock_now.synced,
            clock_jumps=self._clock_jumps,
            clock_disagreements_s=dict(self._disagreements),
            adapter=self._adapter.statistics() if self._adapter else None,
            loop_lag_s=self._loop_lag.last_s,
            loop_lag_max_s=self._loop_lag.max_s,
            rates=self._field.rates(),
            alerts=self._field.alerts(),
            dropped=_drops(devices, outbox, mqtt_stats, self._live.dropped),
            frame_queue_high_water=self._frames.high_water,
        )

    async def request_sync(self, *, full: bool = False) -> health_upload.SyncProgress:
        """Start a health upload sync now (``wgw sync``); see ``HealthUploadSink.request_sync``."""
        if self._upload is None:
            msg = "the daemon has not started"
            raise RuntimeError(msg)
        return await self._upload.request_sync(full=full)

    def study_context(self) -> StudyContext:
        """Participants, sessions and markers (``wgw session``, ``wgw mark``)."""
        if self._study is None:
            msg = "the daemon has not started"
            raise RuntimeError(msg)
        return self._study

    def sync_progress(self) -> health_upload.SyncProgress | None:
        """The latest requested sync, or None."""
        return self._upload.statistics().sync if self._upload is not None else None

    async def run(self) -> None:
        """Run until :meth:`stop`, then drain, all of it within ``shutdown_timeout_s``.

        The drain (links, pipeline, sinks) gets 60% of the bound, closing (the outbox's last
        commit, the HTTP session, the simulator) the rest up to 90%; past that, what is left
        is abandoned, said in one line (``abandoned``) and the CLI exits non-zero. The last
        10% is the CLI's guard (``gateway.shutdown``), for a thread stuck where no timeout
        reaches (an fsync on a failing card).
        """
        try:
            async with asyncio.timeout(None) as bound:
                await self._run(bound)
        except TimeoutError:
            self.abandoned = self.abandoned_now()
            log.error(
                "shutdown: not done within %.1f s; abandoned %s",
                0.9 * self.settings.shutdown_timeout_s,
                self.abandoned,
            )

    def abandoned_now(self) -> str:
        """What a shutdown past its bound leaves behind, in a few words."""
        parts = [f"{self._frames.qsize()} frames not stored"]
        if self._outbox is not None:
            parts.append(f"{self._outbox.uncommitted} records not committed")
        running = [t for t in self._drain_tasks if not t.done()]
        if running:
            parts.append("tasks still running: " + ", ".join(_where(t) for t in running))
        return "; ".join(parts)

    async def _run(self, bound: asyncio.Timeout) -> None:
        s = self.settings
        async with AsyncExitStack() as stack:
            outbox = await stack.enter_async_context(self._outbox_for_sinks())
            self._outbox = outbox
            self.started = True
            self._study = StudyContext(outbox, now=self._utc_now, stamp=self._clock_stamp)
            await self._study.load(s.devices)
            backends = PLATFORM
            if self.sim_world is not None:
                await stack.enter_async_context(self.sim_world)
                backends = simulated(self.sim_world)
            session = await stack.enter_async_context(aiohttp.ClientSession())
            self._build_sinks(outbox, session)
            self._links = await self._build_links(backends, outbox)
            if s.http.enabled:
                self.status_url = await self._serve_http(stack)
            async with asyncio.TaskGroup() as tg:
                background = self._start_background(tg, outbox)
                pipeline = tg.create_task(self._store_frames(outbox), name="wgw.pipeline")
                links = [
                    tg.create_task(link.run(), name=f"wgw[{link.spec.device_id}].link")
                    for link in self._links
                ]
                self._ready.set()
                log.info("gateway %s running with %d devices", s.gateway_id, len(self._links))
                notifier = Notifier()
                notifier.ready(await self._summary())
                systemd = tg.create_task(self._tell_systemd(notifier), name="wgw.systemd")
                await self._stop.wait()
                notifier.stopping()
                systemd.cancel()
                await self._drain(bound, outbox, links, pipeline, background)
            await self._flush_if_possible(outbox)  # the sinks' last acks
            self._final = await self.statistics()
            log.info(
                "stopped: %d frames stored this run (%d duplicates dropped), %d rows in the outbox",
                self._frames_stored,
                self._final.outbox.duplicates,
                self._final.outbox.total_rows,
            )

    async def _drain(
        self,
        bound: asyncio.Timeout,
        outbox: Outbox,
        links: list[asyncio.Task[None]],
        pipeline: asyncio.Task[None],
        background: list[asyncio.Task[None]],
    ) -> None:
        """Stop the links, store what they sent, commit it, then stop the sinks and watchers."""
        timeout_s = self.settings.shutdown_timeout_s
        started = asyncio.get_running_loop().time()
        bound.reschedule(started + 0.9 * timeout_s)
        log.info("stopping: draining links, pipeline and outbox")
        tasks = [*links, pipeline, *background]
        self._drain_tasks = tasks
        try:
            async with asyncio.timeout_at(started + 0.6 * timeout_s):
                await _cancel_and_wait(links)
                await self._frames.put(None)
                await pipeline
                await self._flush_if_possible(outbox)
        except TimeoutError:
            self.abandoned = self.abandoned_now()
            log.error("shutdown: draining is late; abandoning %s", self.abandoned)
        finally:
            if self._mqtt is not None:
                self._mqtt.stop()  # a cancel its publish swallows (3.11) still ends it
            await _cancel_and_wait(tasks)

    @staticmethod
    async def _flush_if_possible(outbox: Outbox) -> None:
        """Commit what was accepted; a failing store keeps it only in memory: said, not raised."""
        try:
            await outbox.flush()
        except StorageError as exc:
            log.error(
                "stopping with a failing store: %d records not stored (%s)", outbox.uncommitted, exc
            )

    def _start_background(self, tg: asyncio.TaskGroup, outbox: Outbox) -> list[asyncio.Task[None]]:
        """The sinks and the watchers (clock, adapter, loop lag), cancelled last at shutdown."""
        assert self._upload is not None
        assert self._adapter is not None
        upload = self._supervised(outbox, health_upload.SINK, self._upload.run)
        tasks = [tg.create_task(upload, name="wgw.sink.health_upload")]
        if self._mqtt is not None:
            tasks.append(tg.create_task(self._mqtt.run(), name="wgw.sink.mqtt"))
        if self._conversion is not None:
            from gateway.sinks import conversion  # noqa: PLC0415 - see _build_sinks

            converting = self._supervised(outbox, conversion.SINK, self._conversion.run)
            tasks.append(tg.create_task(converting, name="wgw.sink.conversion"))
        tasks.append(tg.create_task(self._watch_clock(outbox), name="wgw.clock"))
        tasks.append(tg.create_task(self._adapter.run(), name="wgw.adapter"))
        tasks.append(tg.create_task(self._loop_lag.run(), name="wgw.loop_lag"))
        tasks.append(tg.create_task(self._watch_field(outbox), name="wgw.alerts"))
        return tasks

    @staticmethod
    async def _supervised(outbox: Outbox, sink: str, run: Callable[[], Awaitable[None]]) -> None:
        """Run a sink that reads its backlog; while the store fails, wait, then start it over."""
        while True:
            try:
                await run()
            except* StorageError as group:
                log.warning("%s waits for the store: %s", sink, group.exceptions[0])
                outbox.forget_leases(sink)
                await outbox.wait_usable()
                await asyncio.sleep(_STORE_RETRY_S)  # a read error with the store working

    async def _watch_field(self, outbox: Outbox) -> None:
        """Evaluate rates and alerts every ``alerts.check_interval_s``."""
        while True:
            await asyncio.sleep(self.settings.alerts.check_interval_s)
            stats = await outbox.statistics()
            backlogs = {sink: b.pending for sink, b in stats.backlog.items()}
            store = None
            if stats.store_failing is not None:
                not_stored = stats.discarded.get("store_failing", 0)
                store = f"{stats.store_failing}; {stats.held} held, {not_stored} not stored"
            self._field.evaluate(self._device_states(), backlogs, self._utc_now(), store=store)

    async def _serve_http(self, stack: AsyncExitStack) -> str:
        """The local API and live page, until ``stack`` closes; their base URL."""
        http = self.settings.http
        token = http.token.get_secret_value() if http.token else None
        return await serve_status(stack, self, http.host, http.port, token=token)

    def _outbox_for_sinks(self) -> Outbox:
        """The outbox, with a backlog for each sink the config switches on."""
        s = self.settings
        subscriptions = {health_upload.SINK: health_upload.wants}
        if s.mqtt.enabled:
            subscriptions[mqtt.SINK] = mqtt.wants
        if s.conversion.enabled:
            from gateway.sinks import conversion  # noqa: PLC0415 - see _build_sinks

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

    async def _build_links(self, backends: BleBackends, outbox: Outbox) -> list[DeviceLink]:
        """One supervised link per configured device, sharing the adapter's connection slots."""
        s = self.settings
        timings = LinkTimings(
            scan_timeout_s=s.ble.scan_timeout_s,
            connect_timeout_s=s.ble.connect_timeout_s,
            gatt_timeout_s=s.ble.gatt_timeout_s,
            reconnect_min_s=s.ble.reconnect_min_s,
            reconnect_max_s=s.ble.reconnect_max_s,
            notification_queue_max=s.ble.notification_queue_max,
            stream_silence_s=s.ble.stream_silence_s,
        )
        slots = asyncio.Semaphore(s.ble.max_connections)
        self._adapter = AdapterWatch(
            s.ble.adapter,
            backends.recover_adapter if s.ble.adapter_recovery else None,
            silence_s=s.ble.adapter_silence_s,
            recovery_interval_s=s.ble.adapter_recovery_interval_s,
        )
        return [
            DeviceLink(
                _device_spec(d, await self._record_cursors(outbox, d.id)),
                backends,
                self._frames.put,
                timings,
                now=self.wallclock.mono,  # UTC at storage: see _store_frames
                connection_slots=slots,
                adapter=self._adapter,
                utc=self._utc_now,
            )
            for d in s.devices
        ]

    async def _record_cursors(self, outbox: Outbox, device_id: str) -> dict[str, int | None] | None:
        """Where a device's record fetches start: after the newest record the outbox holds.

        None when backfill is off. A store that cannot be read now: from the first record
        (the outbox drops what it holds already, by each record's device timestamp).
        """
        if not self.settings.ble.backfill:
            return None
        streams = {recorded.stream for recorded in RECORDED.values()}
        try:
            return {stream: await outbox.cursor(device_id, stream) for stream in streams}
        except StorageError as exc:
            log.warning(
                "%s: record cursors unreadable (%s): fetching from the first", device_id, exc
            )
            return {}

    def _build_sinks(self, outbox: Outbox, session: aiohttp.ClientSession) -> None:
        """The sinks the config asks for, over ``outbox`` and one HTTP session."""
        s = self.settings
        tcm = s.cloud.tcm
        limiter = ClientRateLimiter(
            PLANS[tcm.plan],
            state_path=tcm.rate_limit_state or s.storage.path.with_name("tcm_rate_limit.json"),
            scale=tcm.rate_limit_scale,
        )
        token_cache = s.storage.path.with_name("tcm_token.json")
        self._upload = health_upload.HealthUploadSink(
            outbox, TcmClient(session, tcm, limiter, token_cache=token_cache), s.sync
        )
        if s.mqtt.enabled:
            self._mqtt = mqtt.MqttSink(
                outbox,
                s.mqtt,
                s.gateway_id,
                device_states=self._device_states,
                alerts=self._field.alerts,
                on_command=self._study_command,
            )
        if s.conversion.enabled:
            # imported only when asked for: the signal chain's scipy costs ~65 MB of memory
            from gateway.clients.heartvoice import HeartVoiceClient  # noqa: PLC0415
            from gateway.sinks import conversion  # noqa: PLC0415

            self._conversion = conversion.ConversionSink(
                outbox, HeartVoiceClient(session, s.cloud.heartvoice), s.conversion, s.dsp
            )

    async def _study_command(self, body: dict[str, Any]) -> dict[str, Any]:
        """One study command from MQTT: ``result`` (what was stored), or ``error``."""
        try:
            item = await perform(self.study_context(), str(body.get("action")), body)
        except ValueError as exc:  # StudyError included
            return {"error": str(exc)}
        return {"result": vars_of(item)}

    async def _summary(self) -> str:
        """One line for ``systemctl status``."""
        stats = await self.statistics()
        connected = sum(d.connected for d in stats.devices)
        backlog = ", ".join(f"{k} {v.pending}" for k, v in stats.outbox.backlog.items())
        return (
            f"{connected}/{len(stats.devices)} devices connected, {stats.frames_stored} frames"
            f" stored; backlog {backlog}"
        )

    async def _tell_systemd(self, notifier: Notifier) -> None:
        """WATCHDOG=1 from this event loop at half the watchdog timeout; STATUS= every 10 s."""
        if not notifier.enabled:
            return
        interval = min(notifier.watchdog_interval_s or 10.0, 10.0)
        last_status = asyncio.get_running_loop().time()
        while True:
            await asyncio.sleep(interval)
            if notifier.watchdog_interval_s is not None:
                notifier.watchdog()
            if asyncio.get_running_loop().time() - last_status >= 10.0:
                notifier.status(await self._summary())
                last_status = asyncio.get_running_loop().time()

    def _utc_now(self) -> float:
        """Now, on the same time line as the stored samples."""
        return self.wallclock.mono() + self._clock_now.offset_s

    def _clock_stamp(self) -> ClockStamp:
        """How a time taken now is converted: boot, offset, trusted or not."""
        now = self._clock_now
        return ClockStamp(self.wallclock.boot_id, now.offset_s, now.synced)

    def _device_states(self) -> tuple[LinkStatistics, ...]:
        """Each link's statistics, its times in UTC (links keep the monotonic clock)."""
        offset = self._clock_now.offset_s
        return tuple(_statistics_in_utc(link.statistics(), offset) for link in self._links)

    async def _watch_clock(self, outbox: Outbox) -> None:
        """Read the wall clock every second; on a jump, correct the untrusted rows."""
        watch = ClockWatch(self._clock_now, self.settings.clock.jump_threshold_s)
        owed: ClockJump | None = None  # a correction the outbox could not make yet
        while True:
            await asyncio.sleep(self.settings.clock.check_interval_s)
            reading = self.wallclock.read()
            jump = watch.check(reading)
            self._clock_now = reading
            self._cross_check_devices()
            if jump is not None:
                self._clock_jumps += 1
                owed = (
                    jump
                    if owed is None
                    else dataclasses.replace(jump, offset_before_s=owed.offset_before_s)
                )
            if owed is None:
                continue
            try:
                moved = await outbox.correct_clock(
                    self.wallclock.boot_id,
                    reading.offset_s,
                    at_mono_s=owed.at_mono_s,
                    offset_before_s=owed.offset_before_s,
                    synced=reading.synced,
                )
            except StorageError as exc:  # a full disk: tried again at the next check
                log.error("clock correction postponed: %s", exc)
                continue
            log.warning(
                "the wall clock jumped by %+.3f s (synchronised: %s): %d untrusted rows corrected",
                reading.offset_s - owed.offset_before_s,
                reading.synced,
                moved,
            )
            owed = None

    def _cross_check_devices(self) -> None:
        """Compare each device's own clock with ours; say when one starts to disagree.

        Devices that agree with one another but not with the gateway point at the gateway's
        clock; one device alone off points at that device.
        """
        limit = self.settings.clock.device_disagreement_s
        for state in self._device_states():
            offset = state.clock_offset_s
            if offset is None or abs(offset) <= limit:
                self._disagreements.pop(state.device_id, None)
                continue
            if state.device_id not in self._disagreements:
                log.warning(
                    "%s: its clock and the gateway's disagree by %+.1f s (gateway synchronised:"
                    " %s)",
                    state.device_id,
                    offset,
                    self._clock_now.synced,
                )
            self._disagreements[state.device_id] = round(offset, 3)

    async def _store_frames(self, outbox: Outbox) -> None:
        """The pipeline: frames in arrival order to the outbox, in UTC, with their study labels."""
        study = self.study_context()
        while (frame := await self._frames.get()) is not None:
            now = self._clock_now
            utc = _in_utc(frame, now.offset_s)
            participant = study.participant_for(utc.device_id, utc.t0_s)
            labels = Labels(participant, study.session_for(participant, utc.t0_s))
            reading = Reading(utc, labels)
            if not reading.backfilled:  # history, not live: the page and MQTT's live lane skip it
                self._live.offer(utc)
                if self._mqtt is not None:  # live subscribers do not wait for the commit
                    self._mqtt.offer_live(reading)
            record = dataclasses.replace(
                codec.to_record(utc),
                clock=self._clock_stamp(),
                participant_id=labels.participant_id,
                session_id=labels.session_id,
            )
            await outbox.put(record)
            self._frames_stored += 1
            self._stored_by_device[frame.device_id] += 1


def _in_utc(frame: Frame, offset_s: float) -> Frame:
    """A frame stamped on the monotonic clock, in UTC."""
    if isinstance(frame, GapMarker):
        return dataclasses.replace(frame, t0_s=frame.t0_s + offset_s, t1_s=frame.t1_s + offset_s)
    return dataclasses.replace(frame, t0_s=frame.t0_s + offset_s)


def _drops(
    devices: tuple[LinkStatistics, ...],
    outbox: OutboxStatistics,
    mqtt_stats: mqtt.MqttStatistics | None,
    live_page: int,
) -> tuple[Drop, ...]:
    """Every item the gateway let go of, by where and why (``wgw_dropped_total``)."""
    drops = [
        Drop("link_queue", "queue_full", sum(d.dropped_queue_full for d in devices)),
        Drop("link_decode", "malformed", sum(d.decode_errors for d in devices)),
        Drop("live_page", "queue_full", live_page),
        Drop("outbox", "duplicate", outbox.duplicates),
        *(Drop("outbox", reason, n) for reason, n in sorted(outbox.discarded.items())),
    ]
    if mqtt_stats is not None:
        drops.append(Drop("mqtt_live", "queue_full", mqtt_stats.live_dropped))
        drops.append(Drop("mqtt_live", "stale", mqtt_stats.live_stale))
    return tuple(drops)


def _statistics_in_utc(stats: LinkStatistics, offset_s: float) -> LinkStatistics:
    streams = tuple(
        dataclasses.replace(s, last_time_s=s.last_time_s + offset_s)
        if s.last_time_s is not None
        else s
        for s in stats.streams
    )
    device_offset = stats.clock_offset_s + offset_s if stats.clock_offset_s is not None else None
    return dataclasses.replace(stats, streams=streams, clock_offset_s=device_offset)


def _device_spec(device: DeviceConfig, cursors: dict[str, int | None] | None) -> DeviceSpec:
    pmd_streams = tuple(
        StreamSettings(p.measurement, p.sample_rate_hz, p.resolution_bits, p.channels)
        for p in device.pmd
    )
    return DeviceSpec(device.id, device.address, pmd_streams, cursors)


def _where(task: asyncio.Task[None]) -> str:
    """A task's name and the line it waits at (what a stuck shutdown names)."""
    stack = task.get_stack()
    if not stack:
        return task.get_name()
    frame = stack[-1]
    return (
        f"{task.get_name()} at {frame.f_code.co_filename}:{frame.f_lineno} ({frame.f_code.co_name})"
    )


async def _cancel_and_wait(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel and wait; their errors surface at the TaskGroup, ours (a cancel) here."""
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks)
