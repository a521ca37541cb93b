"""Field-day soak (issue 9): the real daemon under load and faults, with the books balanced.

Runs ``wgw run`` as a process against 10 simulated devices at their real rates (simulator speed
1, so latency and CPU are real), the cloud emulator (real HTTP on loopback, in this process)
and a Mosquitto it starts itself, through a fault schedule compressed in time: link drops and
out-of-range spells and a window of malformed packets (played by the simulator), a cloud
outage, a 429 storm, a broker restart, a ``kill -9`` of the daemon and its restart, and a
retention squeeze (the restarted daemon gets a small ``storage.max_db_mb``). At the end the
simulated devices stop measuring, the daemon commits, and the books are balanced: every
sample the devices sent is stored, evicted with a counter, or lost in the one place a crash
may lose it (the last flush interval before ``kill -9``, bounded), or it is unaccounted.

Then a naive gateway written here (one task per device, each reading stored in its own
transaction, POSTed alone and published alone) processes the same simulated load, and the
figures are printed side by side.

With ``--backend bumble`` the daemon's devices are served as GATT servers on bumble's host
stack (real ATT, GATT and SMP over a virtual radio) instead of the simulator's own backend,
and so are the naive gateway's.

Usage: python bench/fieldday.py [--seconds N] [--long] [--backend sim|bumble]
Last line: {"bench": "fieldday", "unaccounted": n, "p99_ms": x, "cpu_pct_per_device": x,
            "peak_rss_mb": x, "bytes_written_per_payload_byte": x, ...}
Exit status 1 when a sample is unaccounted for.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import aiomqtt
import aiosqlite
import numpy as np
import yaml
from aiohttp import web
from bleak import BleakClient, BleakScanner
from latency import MOSQUITTO, free_port  # bench/ is the script's folder, on sys.path
from stopping import stop, stop_popen

from buffers.outbox import Outbox
from drivers.ble.backends import BleBackends, bumble, simulated
from drivers.bumble.serve import served
from drivers.gatt import uuids
from drivers.gatt.heart_rate import decode_heart_rate_measurement
from drivers.polar import pmd
from drivers.sim.devices import PRESETS, SimDevice, preset
from drivers.sim.world import SimWorld
from gateway import codec
from gateway.emulator.app import STATE_KEY, EmulatorConfig, emulator_app
from gateway.rate_limits import PLANS, Windows
from gateway.sinks import health_upload, mqtt

FLEET = ["watch"] * 4 + ["strap"] * 3 + ["armband"] * 2 + ["patch"]
FLUSH_S = 1.0
TICK = os.sysconf("SC_CLK_TCK")


class Broker:
    """A Mosquitto on a fixed port that can be stopped and started again (a broker restart)."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.conf = folder / "mosquitto.conf"
        user = "user root\n" if os.geteuid() == 0 else ""
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            f"{user}log_dest none\n"
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        for _ in range(250):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
                return
            time.sleep(0.02)
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        if self.process is not None:
            stop_popen(self.process, "mosquitto")
            self.process = None


# --- the load and its faults --------------------------------------------------------------------


def sim_devices(seconds: float) -> list[dict[str, Any]]:
    """The 10 devices, with the simulator's faults: link drops for everyone (staggered), two
    out-of-range spells, and a window of malformed packets on two devices.
    """
    devices = []
    for i, model in enumerate(FLEET):
        faults: list[dict[str, Any]] = [
            {"kind": "link_drop", "at_s": 0.15 * seconds + i, "every_s": 0.4 * seconds}
        ]
        if i in (0, 4):
            faults.append({"kind": "out_of_range", "at_s": 0.25 * seconds, "duration_s": 5})
        if i in (2, 7):
            faults.append(
                {"kind": "malformed", "at_s": 0.3 * seconds, "duration_s": 8, "rate": 0.3}
            )
        devices.append(
            {"model": model, "address": f"5A:00:00:00:09:{i:02X}", "seed": i, "faults": faults}
        )
    return devices


def pmd_of(model: str) -> dict[str, Any]:
    spec = PRESETS[model]["pmd"]  # type: ignore[index]
    return {
        "measurement": spec.measurement,
        "sample_rate_hz": spec.sample_rate_hz,
        "resolution_bits": spec.resolution_bits,
        "channels": spec.channels,
    }


@dataclass(frozen=True)
class Ports:
    """Where the daemon finds the broker and the emulator, and serves its API."""

    broker: int
    emulator: str
    http: int


def daemon_config(
    folder: Path, ports: Ports, seconds: float, cap_mb: float | None, backend: str
) -> Path:
    config = {
        "gateway_id": "field",
        "ble": {
            "backend": backend,
            "scan_timeout_s": 2,
            "reconnect_max_s": 1,
            "max_connections": len(FLEET),  # the simulated adapter holds them all
            "sim": {"devices": sim_devices(seconds)},
        },
        "devices": [
            {"id": f"{m}-{i}", "address": f"5A:00:00:00:09:{i:02X}", "pmd": [pmd_of(m)]}
            for i, m in enumerate(FLEET)
        ],
        "storage": {"path": str(folder / "wgw.sqlite"), "max_db_mb": cap_mb},
        "mqtt": {
            "port": ports.broker,
            "topic_prefix": "fd",
            "reconnect_max_s": 1,
        },
        "cloud": {
            "tcm": {
                "base_url": f"{ports.emulator}/api/v1",
                "api_key": "tcm-demo-key",
                "plan": "free",
            }
        },
        "sync": {"retry_max_s": 2, "record_interval_s": 5},
        "http": {"port": ports.http},
        "alerts": {"check_interval_s": 1},
    }
    path = folder / f"config-{cap_mb}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


# --- watching the daemon ------------------------------------------------------------------------


@dataclass
class Snapshot:
    """What one poll of a running daemon saw."""

    at: float  # monotonic
    status: dict[str, Any]
    sim: list[dict[str, Any]]
    proc: dict[str, float]


@dataclass
class Run:
    """One daemon process: its first and last snapshot, and what it had received at each poll.

    Only those are kept: thousands of whole snapshots made this process's garbage collections
    slow enough (up to 0.2 s) to show in the latency its MQTT subscriber measures.
    """

    pid: int
    snapshots: list[Snapshot] = field(default_factory=list)  # the first and the last
    received: list[tuple[float, int]] = field(default_factory=list)  # (at, samples)

    def add(self, snapshot: Snapshot) -> None:
        self.snapshots[1:] = [snapshot]
        if len(self.snapshots) == 1:
            self.snapshots.append(snapshot)
        self.received.append((snapshot.at, received_samples(snapshot.status)))

    @property
    def first(self) -> Snapshot:
        return self.snapshots[0]

    @property
    def last(self) -> Snapshot:
        return self.snapshots[-1]

    def steady(self, key: str) -> float:
        """A /proc figure's growth between the first and the last snapshot (start-up excluded:
        in the field it is paid once for hours)."""
        return self.last.proc[key] - self.first.proc[key]


def proc_figures(pid: int) -> dict[str, float]:
    """CPU seconds, peak RSS (MB) and bytes written to disk so far by a process.

    Written: ``write_bytes`` less ``cancelled_write_bytes`` (pages dirtied and then dropped
    before write-back, as when a file is deleted first: proc(5)).
    """
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    lines = {
        key: value.split()[0]
        for name in ("status", "io")
        for key, _, value in (
            line.partition(":") for line in Path(f"/proc/{pid}/{name}").read_text().splitlines()
        )
        if value.split()
    }
    return {
        "cpu_s": (int(stat[11]) + int(stat[12])) / TICK,
        "peak_rss_mb": int(lines["VmHWM"]) / 1024,
        "write_bytes": float(lines["write_bytes"]) - float(lines["cancelled_write_bytes"]),
    }


def received_samples(status: dict[str, Any]) -> int:
    return sum(d["samples"] for d in status["devices"])


WAVE_STREAMS = frozenset(pmd_of(m)["measurement"] for m in set(FLEET))


def sim_total(sim: list[dict[str, Any]], key: str, *, waveform: bool = True) -> int:
    return sum(
        counts[key]
        for device in sim
        for stream, counts in device["streams"].items()
        if (stream in WAVE_STREAMS) == waveform
    )


def sim_notifications(sim: list[dict[str, Any]]) -> int:
    return sum(int(d.get("notifications_sent", 0)) for d in sim)


def payload_bytes(sim: list[dict[str, Any]]) -> int:
    return sum(c["bytes_sent"] for d in sim for c in d["streams"].values())


async def stored_samples(path: Path) -> tuple[int, int, int, dict[str, int]]:
    """Samples in the outbox (the log replayed, as a restart does), evicted samples, vitals
    readings evicted before every sink had them, backlogs.

    Opened with the daemon's subscriptions: rows replayed here get the daemon's backlogs.
    """
    wants = {health_upload.SINK: health_upload.wants, mqtt.SINK: mqtt.wants}
    async with Outbox(path, wants) as outbox:
        stats = await outbox.statistics()
    with contextlib.closing(sqlite3.connect(path)) as db:  # closed: the index has committed
        rows = db.execute("SELECT shape FROM records WHERE kind = 'waveform'").fetchall()
        pending = db.execute(
            "SELECT sink, COUNT(*) FROM pending WHERE dead = 0 GROUP BY sink"
        ).fetchall()
    samples = sum(json.loads(shape)[0] for (shape,) in rows)
    vitals = sum(n for key, n in stats.evicted.items() if key == "undelivered.vital")
    return samples, sum(stats.evicted_samples.values()), vitals, dict(pending)  # type: ignore[arg-type]


# --- MQTT subscriber ----------------------------------------------------------------------------


@dataclass
class Deliveries:
    """Vitals readings seen on MQTT, the first delivery of each, with its latency."""

    first: set[tuple[str, str, str]] = field(default_factory=set)
    latency_ms: list[tuple[float, float]] = field(default_factory=list)  # (notified at, ms)
    duplicates: int = 0


async def subscribe(port: int, topic: str, seen: Deliveries) -> None:
    while True:
        try:
            async with aiomqtt.Client("127.0.0.1", port) as client:
                await client.subscribe(topic, qos=1)
                async for message in client.messages:
                    arrived = time.time()
                    assert isinstance(message.payload, bytes)
                    body = json.loads(message.payload)
                    key = (body["device_id"], body["kind"], body["timestamp"])
                    if key in seen.first:
                        seen.duplicates += 1
                        continue
                    seen.first.add(key)
                    stamp = datetime.fromisoformat(body["timestamp"]).timestamp()
                    seen.latency_ms.append((stamp, (arrived - stamp) * 1000.0))
        except aiomqtt.MqttError:
            await asyncio.sleep(0.2)  # the broker restart


@contextlib.asynccontextmanager
async def emulator_on_loopback() -> Any:
    app = emulator_app(EmulatorConfig(plan="free"))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield app, f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


# --- ours ---------------------------------------------------------------------------------------


class FieldDay:
    """The real daemon through the fault schedule; the books balanced at the end."""

    def __init__(self, folder: Path, seconds: float, outage_s: float, backend: str) -> None:
        self.folder = folder
        self.backend = backend
        self.seconds = seconds
        self.outage_s = outage_s
        self.broker = Broker(folder)
        self.runs: list[Run] = []
        self.events: list[str] = []
        self.down: list[tuple[float, float]] = []  # epoch spans without a broker or a daemon
        self.seen = Deliveries()
        self.start = 0.0
        self.killed_at = 0.0
        self.stored_before_restart = 0
        self.daemon: asyncio.subprocess.Process | None = None

    async def spawn(self, ports: Ports, cap_mb: float | None) -> None:
        config = daemon_config(self.folder, ports, self.seconds, cap_mb, self.backend)
        self.daemon = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "gateway", "--log-level", "WARNING", "run"),
            *("--config", str(config)),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        self.runs.append(Run(self.daemon.pid))

    async def poll(self, session: aiohttp.ClientSession, base: str) -> bool:
        run = self.runs[-1]
        try:
            async with session.get(f"{base}/api/status") as r:
                status = await r.json()
            async with session.get(f"{base}/api/sim") as r:
                sim = await r.json()
            proc = proc_figures(run.pid)
        except (aiohttp.ClientError, OSError, KeyError, ValueError):
            return False
        run.add(Snapshot(time.monotonic(), status, sim, proc))
        return True

    async def until(self, session: aiohttp.ClientSession, base: str, fraction: float) -> None:
        """Poll every 0.25 s until ``fraction`` of the run has passed."""
        while (wait := self.start + fraction * self.seconds - time.monotonic()) > 0:
            await self.poll(session, base)
            await asyncio.sleep(min(0.25, wait))

    async def run(self) -> dict[str, Any]:
        self.broker.start()
        async with emulator_on_loopback() as (emulator, emulator_url):
            state = emulator[STATE_KEY]
            ports = Ports(self.broker.port, emulator_url, free_port())
            subscriber = asyncio.create_task(
                subscribe(self.broker.port, "fd/field/+/vitals", self.seen)
            )
            try:
                await self.schedule(ports, state)
            finally:
                subscriber.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await subscriber
                self.broker.stop()
                if self.daemon is not None and self.daemon.returncode is None:
                    await stop(self.daemon, "the daemon", sig=signal.SIGKILL, timeout_s=10)
            emulated = {
                "records": sum(len(r) for r in state.records.values()),
                "duplicates": sum(state.duplicates.values()),
                "requests": state.requests,
            }
        return await self.books(emulated)

    async def schedule(self, ports: Ports, state: Any) -> None:
        base = f"http://127.0.0.1:{ports.http}"
        timeout = aiohttp.ClientTimeout(total=2)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            self.start = time.monotonic()
            await self.spawn(ports, None)
            await self.until(session, base, 0.2)
            state.faults.update({"outage_s": self.outage_s})
            self.events.append(f"cloud outage {self.outage_s:g} s")
            await self.until(session, base, 0.35)
            await self.restart_broker()
            await self.until(session, base, 0.45)
            state.faults.update({"fail_next": [429] * 8})
            self.events.append("429 storm (8)")
            await self.until(session, base, 0.55)
            await self.kill_and_restart(session, base, ports)
            await self.until(session, base, 1.0)
            async with session.post(f"{base}/api/sim/pause") as r:
                r.raise_for_status()
            await asyncio.sleep(FLUSH_S + 1.5)  # everything sent reaches the outbox
            for _ in range(20):
                if await self.poll(session, base):
                    break
            assert self.daemon is not None
            await stop(self.daemon, "the daemon (SIGTERM)")

    async def restart_broker(self) -> None:
        self.broker.stop()
        down_from = time.time()
        await asyncio.sleep(2.0)
        self.broker.start()
        self.down.append((down_from - 1, time.time() + 1))
        self.events.append("broker restart (2 s)")

    async def kill_and_restart(
        self, session: aiohttp.ClientSession, base: str, ports: Ports
    ) -> None:
        assert self.daemon is not None
        await self.poll(session, base)
        self.killed_at = time.monotonic()
        await stop(self.daemon, "the daemon (SIGKILL)", sig=signal.SIGKILL, timeout_s=10)
        down_from = time.time()
        self.stored_before_restart, _, _, _ = await stored_samples(self.folder / "wgw.sqlite")
        # the squeeze: room for what is stored and a little more, so that eviction starts
        # partway through the second run
        held = (self.folder / "wgw.sqlite").stat().st_size + sum(
            f.stat().st_size for f in (self.folder / "wgw.sqlite.segments").iterdir()
        )
        cap_mb = round(1.5 * held / 2**20, 3)
        await self.spawn(ports, cap_mb)
        self.down.append((down_from - 1, down_from + 5))
        self.events.append(f"kill -9, restarted with max_db_mb {cap_mb:g} (a retention squeeze)")

    async def books(self, emulated: dict[str, int]) -> dict[str, Any]:
        """Every sample the devices sent: stored, evicted, lost at the kill (bounded), or not."""
        stored_end, evicted, evicted_vitals, pending = await stored_samples(
            self.folder / "wgw.sqlite"
        )
        first, second = self.runs
        received1 = received_samples(first.last.status)
        received2 = received_samples(second.last.status)
        lost_at_kill = received1 - self.stored_before_restart
        # the most a crash may lose: what arrived in the last flush interval (and the half
        # second the snapshot may be old)
        window_start = self.killed_at - FLUSH_S - 0.5
        before = max(
            (received for at, received in first.received if at <= window_start),
            default=0,
        )
        bound = received1 - before
        balance = self.stored_before_restart + received2 - stored_end - evicted
        sent2 = sim_total(second.last.sim, "sent")
        unaccounted = abs(balance) + abs(sent2 - received2)
        unaccounted += max(0, lost_at_kill - bound) + max(0, -lost_at_kill)
        live = [
            ms
            for stamp, ms in self.seen.latency_ms
            if not any(a <= stamp <= b for a, b in self.down)
        ]
        runs = self.runs
        wall = sum(r.last.at - r.first.at for r in runs)
        payload = sum(payload_bytes(r.last.sim) - payload_bytes(r.first.sim) for r in runs)

        def total(key: str, *, waveform: bool = True) -> int:
            return sum(sim_total(r.last.sim, key, waveform=waveform) for r in runs)

        return {
            "events": self.events,
            "seconds": time.monotonic() - self.start,
            "generated": total("produced"),
            "sent": total("sent"),
            "lost_link_down": total("lost_link_down"),
            "lost_malformed": total("malformed"),
            "lost_radio": total("lost_radio") + total("stalled"),
            "received": received1 + received2,
            "stored": stored_end,
            "evicted": evicted,
            "lost_at_kill": lost_at_kill,
            "lost_at_kill_bound": bound,
            "unaccounted": unaccounted,
            "vitals_sent": total("sent", waveform=False),
            "vitals_evicted": evicted_vitals,
            "mqtt_delivered": len(self.seen.first),
            "mqtt_duplicates": self.seen.duplicates,
            "mqtt_backlog": pending.get("mqtt", 0),
            "upload_backlog": pending.get("health_upload", 0),
            "emulator_records": emulated["records"],
            "emulator_duplicates": emulated["duplicates"],
            "requests": emulated["requests"],
            "notifications_per_s_per_device": sum(
                sim_notifications(r.last.sim) - sim_notifications(r.first.sim) for r in runs
            )
            / wall
            / len(FLEET),
            "p50_ms": percentile(live, 50),
            "p99_ms": percentile(live, 99),
            "cpu_pct_per_device": 100.0 * sum(r.steady("cpu_s") for r in runs) / wall / len(FLEET),
            "peak_rss_mb": max(r.last.proc["peak_rss_mb"] for r in runs),
            "bytes_written": sum(r.steady("write_bytes") for r in runs),
            "payload_bytes": payload,
        }


# --- the naive gateway ---------------------------------------------------------------------------


@dataclass
class Naive:
    """One task per device; each reading: its own transaction, its own POST, its own publish."""

    db: aiosqlite.Connection
    session: aiohttp.ClientSession
    mqtt: aiomqtt.Client
    url: str
    requests: int = 0
    payload: int = 0

    async def device(self, i: int, device: SimDevice, backends: BleBackends) -> None:
        settings = pmd.StreamSettings(**pmd_of(FLEET[i]))
        queue: asyncio.Queue[tuple[str, bytes, float]] = asyncio.Queue()

        def on_notify(characteristic: Any, data: bytearray) -> None:
            queue.put_nowait((characteristic.uuid, bytes(data), time.time()))

        # as heard advertising (bumble's devices advertise a random static address)
        assert backends.scanner is not None
        heard = await BleakScanner.find_device_by_address(
            device.address, 10, backend=backends.scanner
        )
        async with BleakClient(heard or device.address, backend=backends.client) as client:
            for char in (uuids.HEART_RATE_MEASUREMENT, pmd.PMD_DATA, pmd.PMD_CONTROL_POINT):
                await client.start_notify(char, on_notify)
            await client.write_gatt_char(pmd.PMD_CONTROL_POINT, pmd.start_command(settings))
            while True:
                uuid, data, at = await queue.get()
                self.payload += len(data)
                if uuid == pmd.PMD_CONTROL_POINT:
                    continue
                if uuid == pmd.PMD_DATA:
                    await self.store(i, "wave", at, data)
                    continue
                await self.reading(i, at, decode_heart_rate_measurement(data))

    async def store(self, i: int, kind: str, at: float, body: bytes | str) -> None:
        await self.db.execute("BEGIN")
        await self.db.execute(
            "INSERT INTO r (device, kind, t, body) VALUES (?, ?, ?, ?)", (i, kind, at, body)
        )
        await self.db.execute("COMMIT")

    async def reading(self, i: int, at: float, reading: Any) -> None:
        stamp = codec.iso_utc(at)
        body = json.dumps(
            {
                "device_id": f"d{i}",
                "kind": "heart_rate",
                "timestamp": stamp,
                "values": reading.to_json(),
            }
        )
        await self.store(i, "hr", at, body)
        await self.mqtt.publish(f"naive/d{i}/vitals", body.encode(), qos=1)
        upload = {
            "device_id": f"d{i}",
            "data_type": "realtime",
            "sync_type": "incremental",
            "records": [{"timestamp": stamp, "heart_rate": reading.heart_rate_bpm}],
        }
        headers = {"Authorization": "Bearer tcm-demo-key"}
        with contextlib.suppress(aiohttp.ClientError):
            async with self.session.post(self.url, json=upload, headers=headers) as response:
                await response.read()
        self.requests += 1


async def naive(folder: Path, seconds: float, backend: str) -> dict[str, Any]:
    """The same ten devices through the naive gateway, in this process."""
    (folder / "naive").mkdir(exist_ok=True)
    broker = Broker(folder / "naive")
    broker.start()
    devices = [
        SimDevice(preset(m, f"5A:00:00:00:09:{i:02X}", f"{m}-{i}", seed=i))
        for i, m in enumerate(FLEET)
    ]
    seen = Deliveries()
    subscriber = asyncio.create_task(subscribe(broker.port, "naive/+/vitals", seen))
    before = proc_figures(os.getpid())
    cpu0, start = time.process_time(), time.monotonic()
    try:
        async with (
            emulator_on_loopback() as (_, emulator_url),
            SimWorld(devices, advert_interval_s=0.05) as world,
            contextlib.AsyncExitStack() as stack,
            aiosqlite.connect(folder / "naive" / "naive.sqlite", isolation_level=None) as db,
            aiohttp.ClientSession() as session,
            aiomqtt.Client("127.0.0.1", broker.port) as client,
        ):
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA synchronous=NORMAL")
            await db.execute("CREATE TABLE r (id INTEGER PRIMARY KEY, device, kind, t, body)")
            gateway = Naive(db, session, client, f"{emulator_url}/api/v1/health/upload")
            backends = simulated(world)
            if backend == "bumble":
                radio, _ = await stack.enter_async_context(served(world))
                backends = bumble(radio)
            tasks = [
                asyncio.create_task(gateway.device(i, d, backends)) for i, d in enumerate(devices)
            ]
            await asyncio.sleep(seconds)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        elapsed, cpu_s = time.monotonic() - start, time.process_time() - cpu0
        subscriber.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await subscriber
        broker.stop()
    after = proc_figures(os.getpid())
    latencies = [ms for _, ms in seen.latency_ms]
    return {
        "seconds": elapsed,
        "requests": gateway.requests,
        "cpu_pct_per_device": 100.0 * cpu_s / elapsed / len(FLEET),
        "bytes_written": after["write_bytes"] - before["write_bytes"],
        "payload_bytes": gateway.payload,
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
    }


# --- report -------------------------------------------------------------------------------------


def report(a: dict[str, Any], b: dict[str, Any], backend: str) -> dict[str, Any]:
    pace_s = Windows(PLANS["free"]).sustainable_interval_s()
    per_day = min(a["requests"] * 86_400 / a["seconds"], 86_400 / pace_s)
    naive_per_day = b["requests"] * 86_400 / b["seconds"]
    wear = a["bytes_written"] / a["payload_bytes"]
    naive_wear = b["bytes_written"] / b["payload_bytes"]
    print(
        f"field day: {len(FLEET)} devices on the {backend} backend, {a['seconds']:.0f} s,"
        f" {os.cpu_count()} cores here"
    )
    print(f"  faults: {'; '.join(a['events'])}; link drops, out of range, malformed (simulator)")
    rows = [
        ("samples generated by the simulator", a["generated"]),
        ("  lost with the link down (the simulator's count)", a["lost_link_down"]),
        ("  sent malformed, dropped by the decoder (counted)", a["lost_malformed"]),
        ("  lost in the air or stalled", a["lost_radio"]),
        ("samples sent intact / received by the daemon", f"{a['sent']} / {a['received']}"),
        ("samples stored in the outbox at the end", a["stored"]),
        ("samples evicted by the squeeze (counted)", a["evicted"]),
        ("samples lost at kill -9 (bound)", f"{a['lost_at_kill']} ({a['lost_at_kill_bound']})"),
        ("UNACCOUNTED", a["unaccounted"]),
        ("vitals readings sent", a["vitals_sent"]),
        ("  on MQTT / still in its backlog", f"{a['mqtt_delivered']} / {a['mqtt_backlog']}"),
        ("  evicted by the squeeze before every sink had them", a["vitals_evicted"]),
        (
            "  health records accepted / readings waiting",
            f"{a['emulator_records']} / {a['upload_backlog']}",
        ),
        (
            "  duplicated at the emulator / on MQTT",
            f"{a['emulator_duplicates']} / {a['mqtt_duplicates']}",
        ),
        ("upload requests made", a["requests"]),
    ]
    for name, value in rows:
        print(f"  {name:<52}{value}")
    print(f"  {'':<44}{'ours':>10}{'naive':>12}{'ratio':>8}")
    for name, x, y in (
        ("notification -> MQTT p50 ms", a["p50_ms"], b["p50_ms"]),
        ("notification -> MQTT p99 ms", a["p99_ms"], b["p99_ms"]),
        ("CPU % of a core per device (steady)", a["cpu_pct_per_device"], b["cpu_pct_per_device"]),
        ("bytes written per payload byte", wear, naive_wear),
        ("upload requests per day (free plan: 1,000)", per_day, naive_per_day),
    ):
        print(f"  {name:<44}{x:>10.2f}{y:>12.2f}{y / x if x else float('nan'):>8.1f}")
    print(f"  {'peak RSS of the daemon, MB':<44}{a['peak_rss_mb']:>10.1f}")
    return {
        "bench": "fieldday",
        "backend": backend,
        "devices": len(FLEET),
        "notifications_per_s_per_device": round(a["notifications_per_s_per_device"], 1),
        "seconds": round(a["seconds"], 1),
        "unaccounted": a["unaccounted"],
        "samples_generated": a["generated"],
        "samples_received": a["received"],
        "samples_stored": a["stored"],
        "samples_evicted": a["evicted"],
        "samples_lost_link_down": a["lost_link_down"],
        "samples_lost_malformed": a["lost_malformed"],
        "samples_lost_at_kill": a["lost_at_kill"],
        "mqtt_delivered": a["mqtt_delivered"],
        "vitals_evicted_undelivered": a["vitals_evicted"],
        "emulator_records": a["emulator_records"],
        "emulator_duplicates": a["emulator_duplicates"],
        "p50_ms": round(a["p50_ms"], 2),
        "p99_ms": round(a["p99_ms"], 2),
        "cpu_pct_per_device": round(a["cpu_pct_per_device"], 3),
        "peak_rss_mb": round(a["peak_rss_mb"], 1),
        "bytes_written_per_payload_byte": round(wear, 3),
        "requests_per_day": round(per_day),
        "quota_per_day": PLANS["free"][2],
        "vs_baseline_p99": round(b["p99_ms"] / a["p99_ms"], 2),
        "vs_baseline_cpu": round(b["cpu_pct_per_device"] / a["cpu_pct_per_device"], 2),
        "vs_baseline_bytes_written": round(naive_wear / wear, 2),
        "vs_baseline_requests": round(naive_per_day / per_day, 1) if per_day else None,
    }


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=32.0, help="length of our run")
    parser.add_argument("--long", action="store_true", help="10 minutes, a 2-minute outage")
    parser.add_argument("--backend", choices=("sim", "bumble"), default="sim")
    args = parser.parse_args()
    seconds = 600.0 if args.long else args.seconds
    folder = Path(tempfile.mkdtemp(prefix="wgw-fieldday-"))
    outage_s = 120.0 if args.long else 0.2 * seconds
    ours = await FieldDay(folder, seconds, outage_s, args.backend).run()
    baseline = await naive(folder, min(seconds, 12.0), args.backend)
    figures = report(ours, baseline, args.backend)
    print(json.dumps(figures))
    return 1 if ours["unaccounted"] else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
