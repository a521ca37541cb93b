"""Logs: JSON lines by config, each line about a device or a request carrying its id; text
lines append the ids their message lacks.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import aiohttp
import yaml

from gateway.emulator.app import STATE_KEY
from gateway.logs import JsonLinesFormatter, TextFormatter
from tests.support import free_port, spawn_wgw, wait_for

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
    process = await spawn_wgw(
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


_LOG_EVERY_LEVEL = """
import logging, sys
from gateway.logs import configure_logging
configure_logging("DEBUG", sys.argv[1])
log = logging.getLogger("gateway.t")
log.debug("d"); log.info("i"); log.warning("w", extra={"device_id": "s1"}); log.error("e")
try:
    1 / 0
except ZeroDivisionError:
    log.critical("c", exc_info=True)
"""


def logged(tmp_path: Path, log_format: str, *, journal: bool) -> list[str]:
    """What a process logging as the daemon does wrote to stderr: a file ``JOURNAL_STREAM``
    names (``journal``), or another one."""
    out = tmp_path / f"stderr-{log_format}-{journal}"
    with out.open("wb") as stderr:
        stat = os.fstat(stderr.fileno())
        other = (tmp_path / "elsewhere").stat()
        named = stat if journal else other
        env = {**os.environ, "JOURNAL_STREAM": f"{named.st_dev}:{named.st_ino}"}
        subprocess.run(
            [sys.executable, "-c", _LOG_EVERY_LEVEL, log_format],
            stderr=stderr,
            env=env,
            check=True,
            timeout=60,
        )
    return out.read_text().splitlines()


def test_under_the_journal_text_lines_carry_their_priority_and_no_time(tmp_path: Path) -> None:
    """Test stderr as the journal's stream: every line, a traceback's included, starts with its
    syslog priority and has no timestamp; stderr elsewhere (redirected by hand) and JSON lines
    stay as they were.
    """
    (tmp_path / "elsewhere").touch()
    lines = logged(tmp_path, "text", journal=True)
    assert lines[:4] == [
        "<7>DEBUG gateway.t: d",
        "<6>INFO gateway.t: i",
        "<4>WARNING gateway.t: w [device_id=s1]",
        "<3>ERROR gateway.t: e",
    ]
    assert lines[4] == "<2>CRITICAL gateway.t: c"
    assert lines[5:] and all(line.startswith("<2>") for line in lines[5:])
    assert lines[-1] == "<2>ZeroDivisionError: division by zero"
    plain = logged(tmp_path, "text", journal=False)
    assert plain[0].endswith(" DEBUG gateway.t: d") and plain[0][:4].isdigit()  # the year
    assert not any(line.startswith("<") for line in plain)
    as_json = [json.loads(line) for line in logged(tmp_path, "json", journal=True)]
    assert [line["level"] for line in as_json] == ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
