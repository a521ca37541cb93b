"""Health upload through the faults of issue 7: a 60 s cloud outage, and kill -9 mid-upload."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import time
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from gateway.codec import iso_utc
from gateway.config import Settings
from gateway.daemon import Daemon
from gateway.emulator.app import STATE_KEY
from tests.support import daemon_config, spawn_wgw, wait_for

if TYPE_CHECKING:
    from pathlib import Path

    from aiohttp.test_utils import TestServer

    from drivers.sim.devices import SimDevice


def config_for(tmp_path: Path, emulator_url: str, **sync: object) -> dict[str, Any]:
    return daemon_config(
        tmp_path,
        emulator_url,
        # a chest strap: heart rate only
        [{"model": "strap", "address": "5A:00:00:00:00:01", "heart_rate_interval_ms": 50}],
        [{"id": "watch-01", "address": "5A:00:00:00:00:01"}],
        sync={"record_interval_s": 0, "min_request_interval_s": 0.1, **sync},
    )


@pytest.mark.timeout(150)
async def test_a_60_s_outage_delivers_everything_once_but_the_batch_in_flight(
    tmp_path: Path, emulator: TestServer
) -> None:
    """Test 60 s of dropped connections: afterwards every reading is at the server exactly
    once, except the batch whose answer was cut off as the outage began (counted).
    """
    state = emulator.app[STATE_KEY]
    raw = config_for(tmp_path, str(emulator.make_url("")), retry_max_s=4.0)
    daemon = Daemon(Settings.model_validate(raw))
    assert daemon.sim_world is not None
    watch: SimDevice = daemon.sim_world.peripherals["5A:00:00:00:00:01"]  # type: ignore[assignment]
    runner = asyncio.create_task(daemon.run())
    try:
        await daemon.wait_ready()
        await wait_for(lambda: state.uploads >= 3)
        state.faults.update({"reset_next": 1})  # the answer to the batch in flight is lost
        await wait_for(lambda: state.faults.injected == 1)
        state.faults.update({"outage_s": 60, "outage_mode": "drop"})
        uploads = state.uploads
        await asyncio.sleep(state.faults.outage_until - time.time())
        assert state.uploads <= uploads + 1  # nothing got through (but a retry before it began)
        watch.stop()
        sent = watch.counters["heart_rate"].values_sent
        await wait_for(lambda: len(state.records["watch-01"]) == len(sent), timeout_s=20)
    finally:
        daemon.stop()
        await runner
    stats = (await daemon.statistics()).health_upload
    assert [r["heart_rate"] for r in state.records["watch-01"]] == sent
    assert state.faults.unanswered_accepted > 0
    assert state.duplicates["watch-01"] == state.faults.unanswered_accepted
    assert stats.retries >= 5  # it kept trying through the outage, with backoff
    assert (await daemon.statistics()).outbox.backlog["health_upload"].pending == 0


async def start_daemon(config: Path) -> asyncio.subprocess.Process:
    return await spawn_wgw(
        "run",
        "--config",
        str(config),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )


def committed_timestamps(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT t0_s FROM records WHERE kind = 'vital' AND stream = 'heart_rate' ORDER BY id"
        ).fetchall()
    return [iso_utc(t0) for (t0,) in rows]


async def test_kill_9_during_an_upload_then_restart_misses_nothing(
    tmp_path: Path, emulator: TestServer
) -> None:
    """Test SIGKILL while a request is at the server: after a restart every committed reading
    is there, and no more than one batch arrived twice.
    """
    state = emulator.app[STATE_KEY]
    batch = 20
    raw = config_for(tmp_path, str(emulator.make_url("")), batch_max_records=batch)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(raw))
    db = tmp_path / "wgw.sqlite"

    first = await start_daemon(config)
    try:
        await wait_for(lambda: state.uploads >= 5, timeout_s=20)
        # the server stores each batch, then its answer trickles out over a second: killed
        # once one is stored (arrived was not enough: under load the kill came before the
        # server had stored it, and nothing was sent twice)
        state.faults.update({"slow_body_s": 1.0})
        stored = state.uploads
        await wait_for(lambda: state.uploads > stored, timeout_s=5)
        first.kill()
    finally:
        await first.wait()
    assert first.returncode == -signal.SIGKILL
    await asyncio.sleep(1.1)  # the server finishes the request whose client is gone
    state.faults.update({"slow_body_s": 0.0})

    second = await start_daemon(config)
    first_run = committed_timestamps(db)

    def all_at_server() -> bool:
        return set(first_run) <= {r["timestamp"] for r in state.records["watch-01"]}

    try:
        # everything the first process committed reaches the server
        await wait_for(all_at_server, timeout_s=20)
        await wait_for(lambda: len(committed_timestamps(db)) > len(first_run) + 20)
    finally:
        second.send_signal(signal.SIGTERM)
        _, err = await second.communicate()
    assert second.returncode == 0, err.decode()[-2000:]
    assert 0 < state.duplicates["watch-01"] <= batch
