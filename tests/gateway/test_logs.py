"""Logs: JSON lines by config, each line about a device or a request carrying its id; text
lines append the ids their message lacks.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from typing import TYPE_CHECKING, Any

import aiohttp
import yaml

from gateway.emulator.app import STATE_KEY
from gateway.logs import JsonLinesFormatter, TextFormatter
from tests.support import free_port, wait_for

if TYPE_CHECKING:
    from pathlib import Path

    from aiohttp.test_utils import TestServer


def record(message: str, **extra: object) -> logging.LogRecord:
    r = logging.LogRecord("gateway.sinks.x", logging.WARNING, __file__, 1, message, (), None)
    r.__dict__.update(extra)
    return r


def test_formatters_carry_the_ids() -> None:
    """Test the JSON keys, and the text tags only for ids the message does not name."""
    line = json.loads(JsonLinesFormatter().format(record("s1: link lost", device_id="s1")))
    assert line["device_id"] == "s1" and line["level"] == "WARNING"
    assert line["ts"].endswith("+00:00") and "request_id" not in line
    text = TextFormatter().format(record("s1: upload failed", device_id="s1", request_id="r-9"))
    assert text.endswith("s1: upload failed [request_id=r-9]")


async def test_the_daemon_logs_json_lines_with_device_and_request_ids(
    tmp_path: Path, emulator: TestServer
) -> None:
    """Test a real `wgw run` with logging.format json through a link drop and a 503."""
    http_port = free_port()
    config = {
        "gateway_id": "gw",
        "ble": {
            "backend": "sim",
            "scan_timeout_s": 0.5,
            "reconnect_max_s": 0.2,
            "sim": {"devices": [{"address": "5A:00:00:00:00:01", "heart_rate_interval_ms": 50}]},
        },
        "devices": [{"id": "watch-01", "address": "5A:00:00:00:00:01"}],
        "storage": {"path": str(tmp_path / "wgw.sqlite")},
        "mqtt": {"enabled": False},
        "cloud": {
            "tcm": {
                "base_url": str(emulator.make_url("/api/v1")),
                "api_key": "tcm-demo-key",
                "plan": "enterprise",
                "password": "pw-SECRET-4711",
            }
        },
        "sync": {"record_interval_s": 1, "retry_max_s": 0.5},
        "http": {"port": http_port},
        "logging": {"format": "json"},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    state = emulator.app[STATE_KEY]
    state.faults.update({"fail_next": [503]})
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "run",
        "--config",
        str(path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:

        async def uploaded_after_the_503() -> bool:
            try:
                async with (
                    aiohttp.ClientSession() as session,
                    session.get(f"http://127.0.0.1:{http_port}/api/status") as response,
                ):
                    body: dict[str, Any] = await response.json()
            except aiohttp.ClientError:
                return False
            return bool(body["health_upload"]["records_uploaded"] > 0)

        await wait_for(uploaded_after_the_503, timeout_s=30)
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 20)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0
    text = stderr.decode()
    assert "pw-SECRET-4711" not in text
    lines = [json.loads(line) for line in text.splitlines()]  # every line is JSON
    connected = [x for x in lines if "connected to" in x["message"]]
    assert connected and all(x["device_id"] == "watch-01" for x in connected)
    failed = [x for x in lines if "health upload failed" in x["message"]]
    assert failed, text
    assert failed[0]["device_id"] == "watch-01"
    assert failed[0]["request_id"]  # the emulator's error envelope names it
    assert failed[0]["level"] == "WARNING"
