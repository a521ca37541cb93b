"""systemd's notify protocol against a real datagram socket, and the unit file."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gateway.sdnotify import Notifier

ROOT = Path(__file__).resolve().parents[2]


def listener(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(15)
    return sock


def test_messages_reach_the_socket_and_the_watchdog_interval_is_half_the_timeout(
    tmp_path: Path,
) -> None:
    """Test READY with STATUS, WATCHDOG, STOPPING; no socket: nothing, no error."""
    with listener(tmp_path / "notify") as sock:
        notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "3000000"})
        assert notifier.watchdog_interval_s == 1.5
        notifier.ready("2 devices")
        notifier.watchdog()
        notifier.stopping()
        got = [sock.recv(4096).decode() for _ in range(3)]
    assert got == ["READY=1\nSTATUS=2 devices", "WATCHDOG=1", "STOPPING=1"]
    silent = Notifier({})
    assert not silent.enabled
    silent.ready("nobody listens")
    other = Notifier({"NOTIFY_SOCKET": "x", "WATCHDOG_USEC": "1", "WATCHDOG_PID": "1"})
    assert other.watchdog_interval_s is None  # the watchdog is another process's


def test_an_abstract_socket_address_is_used_as_such() -> None:
    """Test '@name' (what systemd passes nowadays) as an abstract socket."""
    name = f"wgw-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        Notifier({"NOTIFY_SOCKET": "@" + name}).status("fine")
        assert sock.recv(4096) == b"STATUS=fine"


async def test_the_daemon_says_ready_pets_the_watchdog_and_says_stopping(tmp_path: Path) -> None:
    """Test a real `wgw run` under a fake systemd: READY first, WATCHDOG from its loop, then
    STOPPING on SIGTERM and exit 0.
    """
    config = {
        "gateway_id": "gw",
        "ble": {"backend": "sim", "sim": {"devices": [{"address": "5A:00:00:00:00:01"}]}},
        "devices": [{"id": "w1", "address": "5A:00:00:00:00:01"}],
        "storage": {"path": str(tmp_path / "wgw.sqlite")},
        "mqtt": {"enabled": False},
        "cloud": {"tcm": {"base_url": "http://127.0.0.1:9/api/v1", "api_key": "k"}},
        "http": {"enabled": False},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    with listener(tmp_path / "notify") as sock:
        env = {**os.environ, "NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "400000"}
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gateway",
            "run",
            "--config",
            str(tmp_path / "config.yaml"),
            cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            first = (await asyncio.to_thread(sock.recv, 4096)).decode()
            pets = [(await asyncio.to_thread(sock.recv, 4096)).decode() for _ in range(3)]
            process.send_signal(signal.SIGTERM)
            rest = []
            while "STOPPING=1" not in rest:
                rest.append((await asyncio.to_thread(sock.recv, 4096)).decode())
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
            _, err = await process.communicate()
    assert first.startswith("READY=1\nSTATUS=")
    assert "devices connected" in first
    assert pets == ["WATCHDOG=1"] * 3  # every 0.2 s
    assert process.returncode == 0, err.decode()[-2000:]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_the_unit_file_verifies(tmp_path: Path) -> None:
    """Test `systemd-analyze verify` on the unit, pointed at this checkout's wgw."""
    unit = (ROOT / "systemd" / "wearable-gateway.service").read_text()
    assert "Type=notify" in unit
    assert "WatchdogSec=" in unit
    wgw = Path(sys.executable).with_name("wgw")
    local = tmp_path / "wearable-gateway.service"
    local.write_text(
        "\n".join(
            f"ExecStart={wgw} run --config {ROOT / 'config.yaml'}"
            if line.startswith("ExecStart=")
            else line
            for line in unit.splitlines()
        )
    )
    result = subprocess.run(
        ["systemd-analyze", "verify", str(local)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
