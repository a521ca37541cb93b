"""Helpers for tests: free ports, waiting on conditions (never fixed sleeps), a daemon
configuration over simulated devices and the emulator, and ``wgw`` as a process.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from drivers.ble.backends import bumble, simulated

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from drivers.ble.backends import BleBackends
    from drivers.sim.world import SimWorld

ROOT = Path(__file__).resolve().parents[1]
BACKENDS = ("sim", "bumble")  # the simulator's bleak backend, and bumble's real host stack
# a device's `pmd` entry: the H10-like strap's ECG as Polar's H10 streams it
STRAP_ECG: dict[str, Any] = {
    "measurement": "ecg",
    "sample_rate_hz": 130,
    "resolution_bits": 14,
    "channels": 1,
}


@contextlib.asynccontextmanager
async def backends(kind: str, world: SimWorld) -> AsyncIterator[BleBackends]:
    """The running ``world``'s devices through bleak: the simulator's backend, or served as
    GATT servers on bumble's stack (``kind`` "bumble") for as long as the block runs.
    """
    if kind == "sim":
        yield simulated(world)
        return
    from drivers.bumble.serve import served  # noqa: PLC0415 - bumble loads only when asked

    async with served(world) as (radio, _served):
        yield bumble(radio)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def wait_for(
    condition: Callable[[], bool | Awaitable[bool]],
    timeout_s: float = 10.0,
    interval_s: float = 0.02,
) -> None:
    """Poll ``condition`` (sync or async) until true; fail the test after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout_s} s")
        await asyncio.sleep(interval_s)


def daemon_config(
    tmp_path: Path,
    emulator_url: str,
    sim_devices: list[dict[str, Any]],
    devices: list[dict[str, Any]],
    **sections: Any,
) -> dict[str, Any]:
    """A daemon's configuration: gateway ``gw``, simulated devices, the outbox in ``tmp_path``,
    the emulator's TCM API on the enterprise plan, MQTT and HTTP off; ``sections`` are merged in
    (nested mappings key by key).
    """
    config: dict[str, Any] = {
        "gateway_id": "gw",
        "ble": {"backend": "sim", "sim": {"advert_interval_ms": 10, "devices": sim_devices}},
        "devices": devices,
        "storage": {"path": str(tmp_path / "wgw.sqlite"), "flush_interval_ms": 50},
        "mqtt": {"enabled": False},
        "cloud": {
            "tcm": {
                "base_url": f"{emulator_url.rstrip('/')}/api/v1",
                "api_key": "tcm-demo-key",
                "plan": "enterprise",
            }
        },
        "http": {"enabled": False},
    }
    _merge(config, sections)
    return config


def _merge(into: dict[str, Any], changes: dict[str, Any]) -> None:
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


async def spawn_wgw(*args: str, **options: Any) -> asyncio.subprocess.Process:
    """``python -m gateway ARGS`` started as an asyncio subprocess (the emulator may run in this
    process's loop); ``options`` go to ``create_subprocess_exec`` (stdout, stderr, env)."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", *args, cwd=ROOT, **options
    )


async def run_wgw(*args: str) -> tuple[int, str, str]:
    """``python -m gateway ARGS`` to its end: exit status, stdout, stderr."""
    process = await spawn_wgw(*args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def write_daemon_config(path: Path, db: Path, **sections: Any) -> Path:
    """A YAML config at ``path`` for a real ``wgw run``: one simulated watch, the outbox at
    ``db``, a cloud nobody answers (uploads wait, as without network); ``sections`` merged in.
    """
    config = daemon_config(
        path.parent,
        f"http://127.0.0.1:{free_port()}",
        [{"model": "watch", "address": "5A:00:00:00:00:01", "heart_rate_interval_ms": 50}],
        [{"id": "watch-01", "address": "5A:00:00:00:00:01"}],
        **sections,
    )
    config["storage"]["path"] = str(db)
    path.write_text(yaml.safe_dump(config))
    return path


async def wait_for_daemon_exit(
    process: asyncio.subprocess.Process,
    log: asyncio.StreamReader,
    *,
    after: str,
    timeout_s: float,
) -> str:
    """Once ``after`` is in the daemon's log, SIGTERM it and wait for its exit; its log.

    A daemon that never says ``after`` or never exits is killed and the test fails.
    """
    lines: list[str] = []

    async def read_until(text: str | None) -> None:
        while line := (await log.readline()).decode():
            lines.append(line)
            if text is not None and text in line:
                return

    try:
        async with asyncio.timeout(timeout_s):
            await read_until(after)
            process.send_signal(signal.SIGTERM)
            await read_until(None)
            await process.wait()
    except TimeoutError:
        process.kill()
        await process.wait()
        pytest.fail(
            f"the daemon did not {'stop' if any(after in x for x in lines) else 'start'}"
            f" within {timeout_s} s:\n{''.join(lines)}"
        )
    return "".join(lines)
