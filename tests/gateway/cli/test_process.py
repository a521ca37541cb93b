"""The daemon and the demo as real processes: SIGTERM flushes and exits 0; the demo runs alone."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
import yaml

from tests.support import free_port, wait_for

if TYPE_CHECKING:
    from aiohttp.test_utils import TestServer

ROOT = Path(__file__).resolve().parents[3]


def write_config(tmp_path: Path, emulator_url: str, http_port: int, **storage: object) -> Path:
    config = {
        "gateway_id": "gw",
        "ble": {
            "backend": "sim",
            "sim": {"devices": [{"address": "5A:00:00:00:00:01", "heart_rate_interval_ms": 20}]},
        },
        "devices": [{"id": "watch-01", "address": "5A:00:00:00:00:01"}],
        "storage": {"path": str(tmp_path / "wgw.sqlite"), **storage},
        "mqtt": {"enabled": False},
        "cloud": {
            "tcm": {"base_url": emulator_url, "api_key": "tcm-demo-key", "plan": "enterprise"}
        },
        "http": {"port": http_port},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


async def status(port: int) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/api/status") as response,
    ):
        body: dict[str, Any] = await response.json()
        return body


async def test_sigterm_commits_every_received_frame_and_exits_0(
    tmp_path: Path, emulator: TestServer
) -> None:
    """Test that SIGTERM stores what the 60 s flush interval still held, then exits 0."""
    http_port = free_port()
    config = write_config(
        tmp_path, str(emulator.make_url("/api/v1")), http_port, flush_interval_ms=60_000
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "run",
        "--config",
        str(config),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:

        async def enough_received() -> bool:
            try:
                body = await status(http_port)
            except aiohttp.ClientError:
                return False
            return bool(body["devices"][0]["readings"] >= 20)

        await wait_for(enough_received, timeout_s=20)
        with sqlite3.connect(tmp_path / "wgw.sqlite") as db:
            (before,) = db.execute("SELECT COUNT(*) FROM records").fetchone()
        assert before == 0  # nothing committed yet: the flush interval has not passed
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 20)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, stderr.decode()
    match = re.search(
        rb"stopped: (\d+) frames stored this run \(\d+ duplicates dropped\), (\d+) rows", stderr
    )
    assert match is not None, stderr.decode()
    stored, rows = int(match[1]), int(match[2])
    with sqlite3.connect(tmp_path / "wgw.sqlite") as db:
        (count,) = db.execute("SELECT COUNT(*) FROM records").fetchone()
        (readings,) = db.execute(
            "SELECT COUNT(*) FROM records WHERE stream = 'heart_rate'"
        ).fetchone()
    assert count == stored == rows
    assert readings >= 20


@pytest.mark.parametrize("backend", [(), ("--backend", "bumble")], ids=["config", "bumble"])
def test_demo_runs_without_a_broker_and_prints_a_summary(
    tmp_path: Path, backend: tuple[str, ...]
) -> None:
    """Test that `wgw demo --duration` says once that MQTT is off, runs, and summarises: with
    the config's backend, and with the devices served on bumble's stack.
    """
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["mqtt"]["port"] = free_port()  # nobody listens there
    config["http"]["port"] = 0
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "demo", "--duration", "3.5", *backend],
        env={**os.environ, "WGW_SYNC__RECORD_INTERVAL_S": "0"},  # a record per reading
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.count("not reachable") == 1
    assert re.search(r"received \d+ readings, \d+ samples \| stored \d+ rows", out)
    row = re.search(r"^watch-01" + r"\s+(\d+)" * 7 + "$", out, re.MULTILINE)
    assert row is not None, out
    readings, samples, _, stored, uploaded, published, errors = map(int, row.groups())
    assert readings >= 2 and samples > 0 and stored >= readings and uploaded >= 1
    assert published == 0 and errors == 0
    assert (tmp_path / "state" / "wgw.sqlite").exists()
