"""The daemon: opens the outbox, HTTP session and status API, runs links, pipeline and sinks.

Shutdown drains in flow order: the links stop, the pipeline stores what they produced, the
outbox commits, and only then do the sinks stop (what they had not delivered stays queued).
What it is made of is built in ``assembly``; time is ``clock_keeper``'s; frames go through
``frame_pipeline``.

Size: ``Daemon`` is the lifecycle (start in order, statistics, bounded drain in flow order);
what it runs is built elsewhere.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any, Final

import aiohttp

from buffers.errors import StorageError
from drivers.ble.shared_scan import SharedScan
from gateway import assembly
from gateway.alerts import FieldWatch
from gateway.clock_keeper import ClockKeeper
from gateway.daemon_statistics import DaemonStatistics, drops
from gateway.frame_pipeline import FramePipeline
from gateway.http.api import serve_status
from gateway.http.live_feed import LiveFeed
from gateway.loop_lag import LoopLag
from gateway.sdnotify import Notifier
from gateway.simulation import backends_for, build_world, ground_truth
from gateway.sinks import health_upload
from gateway.study import StudyContext, perform, vars_of
from gateway.wallclock import ShiftedClock, SystemClock, WallClock

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from buffers.outbox import Outbox
    from drivers.ble.adapter import AdapterWatch
    from drivers.ble.link import DeviceLink
    from drivers.ble.link_spec import LinkStatistics
    from drivers.sim.world import SimWorld
    from gateway.assembly import Sinks
    from gateway.config import Settings
    from gateway.sinks.lsl import LslSink

log = logging.getLogger(__name__)

_STORE_RETRY_S: Final = 1.0  # a sink that met a storage error starts over no sooner


class Daemon:
    """One gateway process. ``run()`` returns after ``stop()`` once everything is drained.

    Args:
        settings: The validated configuration.
        sim_world: With ``ble.backend: sim``, the world to run against (tests pass theirs to
            script faults and read ground truth); built from config when omitted.
        wallclock: The clocks to read (tests shift and jump theirs).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        sim_world: SimWorld | None = None,
        wallclock: WallClock | None = None,
    ) -> None:
        self.settings = settings
        if settings.ble.backend in ("sim", "bumble"):
            self.sim_world: SimWorld | None = sim_world or build_world(settings.ble.sim)
            self.wallclock: WallClock = wallclock or ShiftedClock(self.sim_world.clock.now_s)
        else:
            self.sim_world = None
            self.wallclock = wallclock or SystemClock()
        self._clock = ClockKeeper(self.wallclock, settings.clock)
        self._pipeline = FramePipeline(self._clock)
        self._stop = asyncio.Event()
        self._ready = asyncio.Event()
        self._outbox: Outbox | None = None
        self._links: list[DeviceLink] = []
        self._adapter: AdapterWatch | None = None
        self._loop_lag = LoopLag()
        self._live = LiveFeed()
        self._field = FieldWatch(settings.alerts)
        self._sinks: Sinks | None = None
        self._study: StudyContext | None = None
        self._lsl: LslSink | None = None
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
        if self._outbox is None or self._sinks is None:
            msg = "the daemon has not started"
            raise RuntimeError(msg)
        sinks = self._sinks
        outbox = await self._outbox.statistics()
        pending = outbox.backlog[health_upload.SINK].pending
        devices = self._device_states()
        mqtt_stats = sinks.mqtt.statistics() if sinks.mqtt else None
        lsl_stats = self._lsl.statistics() if self._lsl else None
        return DaemonStatistics(
            devices=devices,
            frames_stored=self._pipeline.stored,
            stored_by_device=dict(self._pipeline.stored_by_device),
            outbox=outbox,
            health_upload=sinks.upload.statistics(),
            health_upload_drain_eta_s=sinks.upload.drain_eta_s(pending, len(self._links)),
            mqtt=mqtt_stats,
            conversion=sinks.conversion.statistics() if sinks.conversion else None,
            clock_offset_s=self._clock.offset_s,
            clock_synced=self._clock.now.synced,
            clock_jumps=self._clock.jumps,
            clock_disagreements_s=dict(self._clock.disagreements_s),
            adapter=self._adapter.statistics() if self._adapter else None,
            loop_lag_s=self._loop_lag.last_s,
            loop_lag_max_s=self._loop_lag.max_s,
            rates=self._field.rates(),
            alerts=self._field.alerts(),
            dropped=drops(devices, outbox, mqtt_stats, self._live.dropped, lsl_stats),
            frame_queue_high_water=self._pipeline.high_water,
            loop_lag_counts=self._loop_lag.counts,
            loop_lag_sum_s=self._loop_lag.sum_s,
            tasks=len(asyncio.all_tasks()),
            lsl=lsl_stats,
        )

    async def request_sync(self, *, full: bool = False) -> health_upload.SyncProgress:
        """Start a health upload sync now (``wgw sync``); see ``HealthUploadSink.request_sync``."""
        if self._sinks is None:
            msg = "the daemon has not started"
            raise RuntimeError(msg)
        return await self._sinks.upload.request_sync(full=full)

    def study_context(self) -> StudyContext:
        """Participants, sessions and markers (``wgw session``, ``wgw mark``)."""
        if self._study is None:
            msg = "the daemon has not started"
            raise RuntimeError(msg)
        return self._study

    def sync_progress(self) -> health_upload.SyncProgress | None:
        """The latest requested sync, or None."""
        return self._sinks.upload.statistics().sync if self._sinks is not None else None

    async def run(self) -> None:
        """Run until :meth:`stop`, then drain, all of it within ``shutdown_timeout_s``.

        The drain (links, pipeline, sinks) gets 60% of the bound, closing (the outbox's last
        commit, the HTTP session, the simulator) the rest up to 90%; past that, what is left
        is abandoned, said in one line (``abandoned``) and the CLI exits non-zero. The last
        10% is the CLI's guard (``gateway.shutdown_guard``), for a thread stuck where no
        timeout reaches (an fsync on a failing card).
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
        parts = [f"{self._pipeline.waiting} frames not stored"]
        if self._outbox is not None:
            parts.append(f"{self._outbox.uncommitted} records not committed")
        running = [t for t in self._drain_tasks if not t.done()]
        if running:
            parts.append("tasks still running: " + ", ".join(_where(t) for t in running))
        return "; ".join(parts)

    async def _run(self, bound: asyncio.Timeout) -> None:
        s = self.settings
        async with AsyncExitStack() as stack:
            outbox = await stack.enter_async_context(assembly.outbox_for(s))
            self._outbox = outbox
            self.started = True
            clock = self._clock
            self._study = StudyContext(outbox, now=clock.utc_now, stamp=clock.stamp)
            await self._study.load(s.devices)
            bonds = s.storage.path.parent / "bonds.json"
            passkeys = {
                d.address: int(d.passkey.get_secret_value())
                for d in s.devices
                if d.pairing == "passkey" and d.passkey is not None
            }
            backends = await backends_for(s.ble, self.sim_world, stack, bonds, passkeys)
            session = await stack.enter_async_context(aiohttp.ClientSession())
            self._sinks = assembly.build_sinks(
                s,
                outbox,
                session,
                device_states=self._device_states,
                alerts=self._field.alerts,
                on_command=self._study_command,
            )
            self._pipeline.live(self._live.offer)
            if s.lsl.enabled:
                self._lsl = self._lsl_sink()
                self._pipeline.live(self._lsl.offer, backfilled=s.lsl.backfill)
                self._study.listen(self._lsl.marker)
            if self._sinks.mqtt is not None:  # live subscribers do not wait for the commit
                self._pipeline.live(self._sinks.mqtt.offer_live)
            self._adapter = assembly.adapter_watch(s, backends)
            scan = await stack.enter_async_context(SharedScan(backends, self._adapter))
            self._links = await assembly.build_links(
                s,
                backends,
                outbox,
                self._pipeline.put,
                now=self.wallclock.mono,  # UTC at storage: see FramePipeline
                utc=clock.utc_now,
                adapter=self._adapter,
                scan=scan,
                study=self._study,
            )
            if s.http.enabled:
                self.status_url = await self._serve_http(stack)
            async with asyncio.TaskGroup() as tg:
                background = self._start_background(tg, outbox, self._sinks)
                running = self._pipeline.run(outbox, self._study)
                pipeline = tg.create_task(running, name="wgw.pipeline")
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
                self._pipeline.stored,
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
                await self._pipeline.finish()
                await pipeline
                await self._flush_if_possible(outbox)
        except TimeoutError:
            self.abandoned = self.abandoned_now()
            log.error("shutdown: draining is late; abandoning %s", self.abandoned)
        finally:
            if self._sinks is not None and self._sinks.mqtt is not None:
                self._sinks.mqtt.stop()  # a cancel its publish swallows (3.11) still ends it
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

    def _start_background(
        self, tg: asyncio.TaskGroup, outbox: Outbox, sinks: Sinks
    ) -> list[asyncio.Task[None]]:
        """The sinks and the watchers (clock, adapter, loop lag), cancelled last at shutdown."""
        assert self._adapter is not None
        upload = self._supervised(outbox, health_upload.SINK, sinks.upload.run)
        tasks = [tg.create_task(upload, name="wgw.sink.health_upload")]
        if sinks.mqtt is not None:
            tasks.append(tg.create_task(sinks.mqtt.run(), name="wgw.sink.mqtt"))
        if sinks.conversion is not None:
            from gateway.sinks import conversion  # noqa: PLC0415 - see assembly.build_sinks

            converting = self._supervised(outbox, conversion.SINK, sinks.conversion.run)
            tasks.append(tg.create_task(converting, name="wgw.sink.conversion"))
        clock = self._clock.run(outbox, self._device_states)
        tasks.append(tg.create_task(clock, name="wgw.clock"))
        tasks.append(tg.create_task(self._adapter.run(), name="wgw.adapter"))
        tasks.append(tg.create_task(self._loop_lag.run(), name="wgw.loop_lag"))
        tasks.append(tg.create_task(self._watch_field(outbox), name="wgw.alerts"))
        if self._lsl is not None:
            tasks.append(tg.create_task(self._lsl.run(), name="wgw.sink.lsl"))
        return tasks

    def _lsl_sink(self) -> LslSink:
        """The LSL lane: UTC times turned to LSL's clock through the monotonic time line."""
        from gateway.sinks.lsl import LslSink  # noqa: PLC0415 - the optional lsl extra

        clock, wallclock, study = self._clock, self.wallclock, self.study_context()

        def mono_of_utc(t_utc_s: float) -> float:
            return t_utc_s - clock.offset_s

        def device_facts(device_id: str) -> dict[str, str]:
            for link in self._links:
                if link.spec.device_id == device_id:
                    return link.statistics().device_info
            return {}

        return LslSink(
            self.settings.lsl,
            self.settings.gateway_id,
            mono_of_utc=mono_of_utc,
            mono_now=wallclock.mono,
            device_facts=device_facts,
            store_marker=lambda text: study.mark(text, None),
        )

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
            now = self._clock.utc_now()
            self._field.evaluate(
                self._device_states(),
                backlogs,
                now,
                store=store,
                frames_waiting=self._pipeline.waiting,
            )

    async def _serve_http(self, stack: AsyncExitStack) -> str:
        """The local API and live page, until ``stack`` closes; their base URL."""
        http = self.settings.http
        token = http.token.get_secret_value() if http.token else None
        return await serve_status(stack, self, http.host, http.port, token=token)

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

    def _device_states(self) -> tuple[LinkStatistics, ...]:
        """Each link's statistics, its times in UTC (links keep the monotonic clock)."""
        return tuple(self._clock.in_utc(link.statistics()) for link in self._links)


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
