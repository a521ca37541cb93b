"""Shutdown is bounded: SIGTERM at random moments ends a real ``wgw run`` under CPU load within
``shutdown_timeout_s``, with everything it received committed.
"""

from __future__ import annotations

import asyncio
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml
from aiohttp.test_utils import TestServer

from buffers.outbox import Outbox
from gateway.emulator.app import EmulatorConfig, emulator_app
from tests.support import daemon_config, free_port

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from tests.conftest import Broker

ROOT = Path(__file__).resolve().parents[2]
RUNS = 30
AT_ONCE = 5
SHUTDOWN_TIMEOUT_S = 5.0
BUSY = {"heart_rate_interval_ms": 20}  # 150 readings a second: a publish always in flight
STOPPED = re.compile(r"stopped: (\d+) frames stored this run \((\d+) duplicates dropped\)")


@pytest.fixture
def cpu_load() -> Iterator[None]:
    """Two busy loops beside the daemons (this machine has two cores)."""
    loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        yield
    finally:
        for p in loops:
            p.kill()
            p.wait()


@pytest.fixture
async def slow_cloud() -> AsyncIterator[TestServer]:
    """The emulator answering after 1.5 s: an upload is in flight at most moments."""
    config = EmulatorConfig(token_ttl_s=3600, plan="enterprise", faults={"latency_s": 1.5})
    server = TestServer(emulator_app(config), host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


def config_for(folder: Path, cloud: str, mqtt_port: int, *, live: bool) -> Path:
    """Straps streaming ECG, a watch, a cuff whose records are fetched at each connect; with
    ``live`` off every reading goes to MQTT from the backlog (a publish in flight at most
    moments: the shape that hung on 3.11's wait_for).
    """
    sim = [
        *(
            {"model": "strap", "address": f"5A:00:00:00:01:0{i}", "seed": i, **BUSY}
            for i in range(3)
        ),
        {"model": "watch", "address": "5A:00:00:00:02:00", "heart_rate_interval_ms": 50},
        {"model": "cuff", "address": "5A:00:00:00:03:00", "blood_pressure_interval_s": 1},
    ]
    devices = [
        *({"id": f"strap-{i}", "address": f"5A:00:00:00:01:0{i}"} for i in range(3)),
        {"id": "watch", "address": "5A:00:00:00:02:00"},
        {"id": "cuff", "address": "5A:00:00:00:03:00"},
    ]
    config = daemon_config(
        folder,
        cloud,
        sim,
        devices,
        shutdown_timeout_s=SHUTDOWN_TIMEOUT_S,
        mqtt={"enabled": True, "port": mqtt_port, "topic_prefix": "shutdown", "live": live},
        sync={"mode": "realtime", "record_interval_s": 0.5, "min_request_interval_s": 0.2},
        ble={"scan_timeout_s": 0.5, "reconnect_max_s": 0.5},
    )
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


async def stop_at_random(folder: Path, config: Path, rng: random.Random) -> str:
    """Start ``wgw run``, SIGTERM it at a random moment, check its exit; what it said."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "run", "--config", str(config),
        cwd=ROOT, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stderr is not None
    lines: list[str] = []
    running = asyncio.Event()

    async def read() -> None:
        assert process.stderr is not None
        while line := (await process.stderr.readline()).decode():
            lines.append(line)
            if "running with" in line:
                running.set()

    reader = asyncio.create_task(read())
    try:
        async with asyncio.timeout(30):  # the start under load
            await running.wait()
        await asyncio.sleep(rng.uniform(0.0, 2.0))  # the moment: connecting, committing, ...
    except TimeoutError:
        process.kill()
        await process.wait()
        pytest.fail("the daemon did not start within 30 s:\n" + "".join(lines))
    process.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    try:
        await asyncio.wait_for(process.wait(), SHUTDOWN_TIMEOUT_S + 5)
    except TimeoutError:
        process.kill()
        await process.wait()
    took = time.monotonic() - sent
    await reader
    said = "".join(lines)
    assert took <= SHUTDOWN_TIMEOUT_S + 0.5, f"exit {took:.1f} s after SIGTERM:\n{said}"
    assert process.returncode == 0, f"exit status {process.returncode}:\n{said}"
    found = STOPPED.search(said)
    assert found is not None, said
    stored, duplicates = int(found[1]), int(found[2])
    async with Outbox(folder / "wgw.sqlite", {}) as outbox:
        rows = (await outbox.statistics()).total_rows
    assert rows == stored - duplicates, f"{stored - duplicates} frames received, {rows} stored"
    return said


async def test_sigterm_at_random_moments_under_load_ends_in_time_with_everything_stored(
    tmp_path: Path, broker: Broker, slow_cloud: TestServer, cpu_load: None
) -> None:
    """Test 30 SIGTERMs to real daemons: connecting, mid-commit, mid-upload, MQTT away."""
    seed = random.SystemRandom().randrange(1 << 30)
    rng = random.Random(seed)
    cloud = str(slow_cloud.make_url(""))
    dead_port = free_port()  # a third keep reconnecting to a broker that is not there
    runs = []
    for i in range(RUNS):
        folder = tmp_path / f"run{i}"
        folder.mkdir()
        port = dead_port if i % 3 == 0 else broker.port
        runs.append((folder, config_for(folder, cloud, port, live=i % 3 != 1)))
    try:
        for start in range(0, RUNS, AT_ONCE):
            async with asyncio.TaskGroup() as tg:
                for folder, config in runs[start : start + AT_ONCE]:
                    tg.create_task(stop_at_random(folder, config, rng))
    except BaseException:
        print(f"shutdown test: seed {seed}")
        raise


async def test_a_shutdown_past_its_bound_says_what_it_abandoned_and_exits_1(
    tmp_path: Path, broker: Broker, slow_cloud: TestServer
) -> None:
    """Test a bound too short for any drain: exit status 1 and one line naming what was left;
    the store still opens with what was committed before.
    """
    config = config_for(tmp_path, str(slow_cloud.make_url("")), broker.port, live=False)
    raw = yaml.safe_load(config.read_text())
    raw["shutdown_timeout_s"] = 0.001
    config.write_text(yaml.safe_dump(raw))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "run", "--config", str(config),
        cwd=ROOT, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stderr is not None
    said = ""
    async with asyncio.timeout(30):
        while "running with" not in said:
            said += (await process.stderr.readline()).decode()
        process.send_signal(signal.SIGTERM)
        said += (await process.stderr.read()).decode()
        await process.wait()
    assert process.returncode == 1, said
    assert said.count("abandoned") >= 1, said
    async with Outbox(tmp_path / "wgw.sqlite", {}) as outbox:
        await outbox.statistics()
