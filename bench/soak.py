"""Long soak (issue 21): the field day's ten devices for hours, its faults repeating, and whether
anything grows.

Runs ``wgw run`` against the ten simulated devices at their real rates (or ``--speed`` times
faster), the cloud emulator and a Mosquitto, with the field day's fault schedule repeating every
cycle (ten minutes by default): link drops, out-of-range spells and malformed packets played by
the simulator; a cloud outage, a 429 storm and a broker restart played here; a ``kill -9`` of the
daemon every hour (its restart at once). The outbox has a cap, so retention runs throughout.

Every ``--sample-minutes`` it samples the daemon: RSS, rows in every table, disk use, file
descriptors, asyncio tasks, loop lag p99 over the interval, notification -> MQTT p99, the backlog
per sink and the upload requests made. At the end the devices stop, the daemon stops, and the
books are balanced as the field day's are (every sample stored, evicted with a counter, or lost at
a kill within the flush interval). Growth is the second half's: the last sample against the
first at or after half time.

Usage: python bench/soak.py [--hours H | --minutes M] [--speed S] [--sample-minutes N]
Last line: {"bench": "soak", "unaccounted": n, "growth_pct": {...}, "disk_max_mb": x, ...}
Exit status 1 when a sample is unaccounted for.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from fieldday import (  # bench/ is the script's folder, on sys.path
    FLEET,
    FLUSH_S,
    Broker,
    Deliveries,
    Ports,
    daemon_config,
    emulator_on_loopback,
    listening,
    percentile,
    received_samples,
    sim_devices,
    sim_total,
    stored_samples,
    wind_down,
)
from latency import free_port
from stopping import stop

from gateway.emulator.app import STATE_KEY
from gateway.loop_lag import percentile_s
from gateway.rate_limits import PLANS

HOUR_S = 3600.0
# The field day's free plan (333 requests a day) cannot carry ten devices through an outage
# and a storm of eight 429s every ten minutes: each storm would outlast its cycle.
PLAN = "basic"


@dataclass(frozen=True)
class Plan:
    """When things happen, in seconds from the start."""

    total_s: float
    cycle_s: float  # the fault schedule repeats
    sample_s: float  # figures sampled
    kills: tuple[float, ...]  # kill -9 of the daemon

    @classmethod
    def of(cls, total_s: float, sample_s: float | None) -> Plan:
        if total_s >= HOUR_S:
            kills = tuple(h * HOUR_S + 0.55 * HOUR_S for h in range(int(total_s // HOUR_S)))
            return cls(total_s, 600.0, sample_s or 600.0, kills)
        # a short run: two cycles, one kill past the middle, six samples
        return cls(total_s, total_s / 2, sample_s or total_s / 6, (0.55 * total_s,))


def table_rows(path: Path) -> dict[str, int]:
    """Rows in every table of the daemon's database, read beside the running daemon."""
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)) as db:
        names = [
            name
            for (name,) in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
            )
        ]
        return {name: db.execute(f'SELECT COUNT(*) FROM "{name}"').fetchone()[0] for name in names}


def queue_drops(status: dict[str, Any]) -> int:
    """Notifications the links' full queues dropped (counted by the daemon) in one run."""
    return sum(int(d.get("dropped_queue_full", 0)) for d in status.get("devices", []))


def disk_mb(folder: Path) -> float:
    """The outbox on disk: the database, its WAL and the segment files."""
    files = [p for p in folder.glob("wgw.sqlite*") if p.is_file()]
    segments = folder / "wgw.sqlite.segments"
    if segments.is_dir():
        files += [p for p in segments.iterdir() if p.is_file()]
    total = 0
    for path in files:
        with contextlib.suppress(FileNotFoundError):  # a segment retention just deleted
            total += path.stat().st_size
    return total / 2**20


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def open_files(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


@dataclass
class Run:
    """One daemon process and what it had received at each poll."""

    pid: int
    status: dict[str, Any] = field(default_factory=dict)  # the latest
    sim: list[dict[str, Any]] = field(default_factory=list)
    received: list[tuple[float, int]] = field(default_factory=list)  # (monotonic, samples)


class Soak:
    """The daemon for hours under the repeating faults; sampled, then the books balanced."""

    def __init__(self, folder: Path, plan: Plan, cap_mb: float, speed: float) -> None:
        self.folder = folder
        self.plan = plan
        self.cap_mb = cap_mb
        self.speed = speed
        self.broker = Broker(folder)
        self.seen = Deliveries()
        self.runs: list[Run] = []
        self.samples: list[dict[str, Any]] = []
        self.held_after: list[int] = [0]  # stored + evicted samples after each run ended
        self.bounds: list[tuple[int, int]] = []  # (lost, bound) at each kill
        self.queue_drops: list[int] = []  # notifications each ended run's full queues dropped
        self.daemon: asyncio.subprocess.Process | None = None
        self.config = Path()
        self.start = 0.0
        self.down: list[tuple[float, float]] = []  # epoch spans without a broker or a daemon
        self.lag_counts: list[int] = []
        self.latency_seen = 0
        self.events: dict[str, int] = {}
        self.exits: list[int] = []  # exit statuses of a daemon that ended on its own

    # --- the daemon ---------------------------------------------------------------------------

    async def spawn(self) -> None:
        """Start the daemon; its log (warnings and errors) in ``daemon-N.log``."""
        with (self.folder / f"daemon-{len(self.runs) + 1}.log").open("wb") as log:
            self.daemon = await asyncio.create_subprocess_exec(
                *(sys.executable, "-m", "gateway", "--log-level", "WARNING", "run"),
                *("--config", str(self.config)),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=log,
            )
        self.runs.append(Run(self.daemon.pid))
        self.lag_counts = []

    async def poll(self, session: aiohttp.ClientSession, base: str) -> bool:
        run = self.runs[-1]
        try:
            async with session.get(f"{base}/api/status") as r:
                run.status = await r.json()
            async with session.get(f"{base}/api/sim") as r:
                run.sim = await r.json()
        except (aiohttp.ClientError, OSError, ValueError):
            return False
        run.received.append((time.monotonic(), received_samples(run.status)))
        del run.received[:-40]  # the last ten seconds or so: enough for the kill's bound
        return True

    async def kill(self, session: aiohttp.ClientSession, base: str) -> None:
        """``kill -9``, the books of the killed run, and a restart."""
        assert self.daemon is not None
        await self.poll(session, base)
        await stop(self.daemon, "the daemon (SIGKILL)", sig=signal.SIGKILL, timeout_s=10)
        await self.restart(time.monotonic())

    async def restart(self, ended_at: float) -> None:
        """The books of the run that ended at ``ended_at`` (monotonic), and the next one."""
        down_from = time.time()
        run = self.runs[-1]
        received = received_samples(run.status) if run.status else 0
        before = max((n for at, n in run.received if at <= ended_at - FLUSH_S - 0.5), default=0)
        held = await self.held()
        lost = self.held_after[-1] + received - held
        self.held_after.append(held)
        self.bounds.append((lost, received - before))
        self.queue_drops.append(queue_drops(run.status))
        await self.spawn()
        self.down.append((down_from - 1, down_from + 5))

    async def held(self) -> int:
        stored, evicted, _, _ = await stored_samples(self.folder / "wgw.sqlite")
        return stored + evicted

    # --- the schedule -------------------------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        self.broker.start()
        async with emulator_on_loopback(PLAN) as (emulator, emulator_url):
            state = emulator[STATE_KEY]
            ports = Ports(self.broker.port, emulator_url, free_port())
            self.config = daemon_config(
                self.folder,
                ports,
                # the devices' own clock: in simulated seconds when they run faster
                sim_devices(self.plan.cycle_s * self.speed, FLEET, repeat=True),
                self.cap_mb,
                backend="sim",
                speed=self.speed,
                plan=PLAN,
            )
            async with listening(self.broker, self.seen, lambda: self.daemon):
                await self.schedule(ports, state)
            requests = state.requests
        return await self.books(requests)

    async def schedule(self, ports: Ports, state: Any) -> None:
        base = f"http://127.0.0.1:{ports.http}"
        plan = self.plan
        # (at, what): the cycle's cloud and broker faults, the kills, the samples
        todo: list[tuple[float, str]] = []
        cycle = 0.0
        while cycle < plan.total_s:
            todo += [
                (cycle + 0.2 * plan.cycle_s, "outage"),
                (cycle + 0.35 * plan.cycle_s, "broker"),
                (cycle + 0.45 * plan.cycle_s, "storm"),
            ]
            cycle += plan.cycle_s
        todo += [(at, "kill") for at in plan.kills]
        at = plan.sample_s
        while at <= plan.total_s + 1e-6:
            todo.append((min(at, plan.total_s - 1.0), "sample"))
            at += plan.sample_s
        todo.sort()
        outage_s = min(60.0, 0.1 * plan.cycle_s)
        timeout = aiohttp.ClientTimeout(total=5)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            self.start = time.monotonic()
            await self.spawn()
            for when, what in todo:
                await self.until(session, base, when)
                if what == "sample":
                    await self.sample(session, base, state)
                    continue
                if what == "outage":
                    state.faults.update({"outage_s": outage_s})
                elif what == "storm":
                    if state.faults.fail_next:  # the last one is not over: not counted
                        continue
                    state.faults.update({"fail_next": [429] * 8})
                elif what == "broker":
                    await self.restart_broker()
                else:
                    await self.kill(session, base)
                self.events[what] = self.events.get(what, 0) + 1
            assert self.daemon is not None
            await wind_down(session, base, lambda: self.poll(session, base), self.daemon)

    async def until(self, session: aiohttp.ClientSession, base: str, when: float) -> None:
        """Poll until ``when`` (seconds from the start); a daemon that ended on its own (a
        failure of the soak) is restarted, as systemd's Restart=on-failure would."""
        while (wait := self.start + when - time.monotonic()) > 0:
            await self.poll(session, base)
            if self.daemon is not None and self.daemon.returncode is not None:
                self.exits.append(self.daemon.returncode)
                print(f"the daemon exited on its own: {self.daemon.returncode}", flush=True)
                await self.restart(time.monotonic())
            await asyncio.sleep(min(0.25, wait))

    async def restart_broker(self) -> None:
        self.down.append(await self.broker.restart())

    async def sample(self, session: aiohttp.ClientSession, base: str, state: Any) -> None:
        """One row of the table."""
        for _ in range(20):
            if await self.poll(session, base):
                break
            await asyncio.sleep(0.25)
        run = self.runs[-1]
        status = run.status
        counts = list(status.get("loop_lag_counts", []))
        window = counts
        if len(self.lag_counts) == len(counts):
            window = [a - b for a, b in zip(counts, self.lag_counts, strict=True)]
        self.lag_counts = counts
        latencies = [
            ms
            for stamp, ms in self.seen.latency_ms[self.latency_seen :]
            if not any(a <= stamp <= b for a, b in self.down)
        ]
        self.latency_seen = len(self.seen.latency_ms)
        backlog = status.get("outbox", {}).get("backlog", {})
        self.samples.append(
            {
                "t_min": round((time.monotonic() - self.start) / 60, 1),
                "run": len(self.runs),
                "rss_mb": round(rss_mb(run.pid), 1),
                "fds": open_files(run.pid),
                "tasks": status.get("tasks", 0),
                "disk_mb": round(disk_mb(self.folder), 1),
                "loop_lag_p99_ms": round(1000 * percentile_s(window, 99), 1),
                # a sped-up device's clock runs ahead of the wall: no latency to measure
                "mqtt_p99_ms": round(percentile(latencies, 99), 1) if self.speed == 1 else None,
                "backlog": {sink: b["pending"] for sink, b in sorted(backlog.items())},
                "requests": state.requests,
                "records_accepted": sum(len(r) for r in state.records.values()),
                "rows": table_rows(self.folder / "wgw.sqlite"),
            }
        )
        print(json.dumps(self.samples[-1]), flush=True)

    # --- the books ----------------------------------------------------------------------------

    async def books(self, requests: int) -> dict[str, Any]:
        final_disk_mb = disk_mb(self.folder)  # the daemon closed: no WAL
        path = self.folder / "wgw.sqlite"
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            counters = dict(db.execute("SELECT name, value FROM counters").fetchall())
        last = self.runs[-1]
        received = received_samples(last.status)
        held = await self.held()
        lost_at_stop = self.held_after[-1] + received - held
        sent = sim_total(last.sim, "sent")
        # where the books do not balance, each part on its own: what to look at
        beyond = [max(0, lost - bound) + max(0, -lost) for lost, bound in self.bounds]
        parts = {
            "lost_at_stop": lost_at_stop,
            "sent_not_received": sent - received,
            "kills_beyond_bound": beyond,
            "queue_drops_by_run": [*self.queue_drops, queue_drops(last.status)],
        }
        unaccounted = abs(lost_at_stop) + abs(sent - received) + sum(beyond)
        elapsed = time.monotonic() - self.start
        return {
            "seconds": elapsed,
            "unaccounted": unaccounted,
            "unaccounted_parts": parts,
            "lost_at_kills": [lost for lost, _ in self.bounds],
            "kill_bounds": [bound for _, bound in self.bounds],
            "requests": requests,
            "requests_per_day": requests * 86_400 / elapsed,
            "mqtt_delivered": len(self.seen.first),
            "mqtt_duplicates": self.seen.duplicates,
            "final_disk_mb": round(final_disk_mb, 2),
            "evicted_rows": sum(n for k, n in counters.items() if k.startswith("evicted.")),
        }


def growth(samples: list[dict[str, Any]], total_min: float) -> dict[str, Any]:
    """Per figure, the last sample against the first at or after half time, in percent."""
    second = [s for s in samples if s["t_min"] >= total_min / 2] or samples[-1:]
    first, last = second[0], second[-1]

    def pct(a: float, b: float) -> float:
        return round(100.0 * (b - a) / a, 1) if a else (0.0 if b == a else float("inf"))

    return {
        "rss": pct(first["rss_mb"], last["rss_mb"]),
        "fds": pct(first["fds"], last["fds"]),
        "tasks": pct(first["tasks"], last["tasks"]),
        "disk": pct(first["disk_mb"], last["disk_mb"]),
        "rows": {
            name: pct(first["rows"].get(name, 0), n) for name, n in sorted(last["rows"].items())
        },
    }


def _or_dash(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def markdown(samples: list[dict[str, Any]]) -> str:
    """The samples as the README's table."""
    head = (
        "| min | RSS MB | fds | tasks | disk MB | rows (items / pending / source_keys) "
        "| loop lag p99 ms | MQTT p99 ms | backlog (upload / mqtt) | requests |"
    )
    lines = [head, "|" + "---|" * 10]
    for s in samples:
        rows = s["rows"]
        backlog = s["backlog"]
        lines.append(
            f"| {s['t_min']:g} | {s['rss_mb']:g} | {s['fds']} | {s['tasks']} | {s['disk_mb']:g} "
            f"| {rows.get('items', 0)} / {rows.get('pending', 0)} / "
            f"{rows.get('source_keys', 0)} | {s['loop_lag_p99_ms']:g} "
            f"| {_or_dash(s['mqtt_p99_ms'])} "
            f"| {backlog.get('health_upload', 0)} / {backlog.get('mqtt', 0)} | {s['requests']} |"
        )
    return "\n".join(lines)


async def main() -> int:
    parser = argparse.ArgumentParser()
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--hours", type=float, help="length of the soak (3 for the README)")
    length.add_argument("--minutes", type=float, help="a short soak (default 0.9)")
    parser.add_argument("--speed", type=float, default=1.0, help="simulated s per real second")
    parser.add_argument("--sample-minutes", type=float, help="default 10 (short runs: 1/6)")
    parser.add_argument("--max-db-mb", type=float, help="the outbox's cap (default: by length)")
    parser.add_argument("--folder", type=Path, help="where the daemon keeps its files")
    args = parser.parse_args()
    total_s = args.hours * HOUR_S if args.hours else (args.minutes or 0.9) * 60
    plan = Plan.of(total_s, args.sample_minutes * 60 if args.sample_minutes else None)
    cap_mb = args.max_db_mb or (40.0 if total_s >= HOUR_S else 0.6)
    folder = args.folder or Path(tempfile.mkdtemp(prefix="wgw-soak-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(
        f"soak: {len(FLEET)} devices, {total_s / 60:g} min, speed {args.speed:g}, cap"
        f" {cap_mb:g} MB, cycle {plan.cycle_s:g} s, kills at {[round(k) for k in plan.kills]} s,"
        f" in {folder}",
        flush=True,
    )
    soak = Soak(folder, plan, cap_mb, args.speed)
    books = await soak.run()
    print(markdown(soak.samples))
    grown = growth(soak.samples, total_s / 60)
    quota = PLANS[PLAN][2]  # the day window (the month's, spread, is a third of it)
    print(
        f"unaccounted {books['unaccounted']}; lost at kills {books['lost_at_kills']} (bounds"
        f" {books['kill_bounds']}); requests/day {books['requests_per_day']:.0f} (quota {quota});"
        f" faults {soak.events}; growth over the second half {grown}"
    )
    figures = {
        "bench": "soak",
        "minutes": round(books["seconds"] / 60, 1),
        "speed": args.speed,
        "devices": len(FLEET),
        "unaccounted": books["unaccounted"],
        "unaccounted_parts": books["unaccounted_parts"],
        "lost_at_kills": books["lost_at_kills"],
        "kill_bounds": books["kill_bounds"],
        "growth_pct": grown,
        "disk_max_mb": max(s["disk_mb"] for s in soak.samples),
        "final_disk_mb": books["final_disk_mb"],
        "evicted_rows": books["evicted_rows"],
        "cap_mb": cap_mb,
        "requests_per_day": round(books["requests_per_day"]),
        "quota_per_day": quota,
        "mqtt_delivered": books["mqtt_delivered"],
        "mqtt_duplicates": books["mqtt_duplicates"],
        "loop_lag_p99_ms_max": max(s["loop_lag_p99_ms"] for s in soak.samples),
        "mqtt_p99_ms_max": max(s["mqtt_p99_ms"] for s in soak.samples) if args.speed == 1 else None,
        "faults": soak.events,
        "unexpected_exits": soak.exits,
        "samples": soak.samples,
    }
    print(json.dumps(figures))
    return 1 if books["unaccounted"] or soak.exits else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
