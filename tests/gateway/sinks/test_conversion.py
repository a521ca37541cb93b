"""Conversion in the daemon: PPG -> ECG -> 12 leads and 3-lead ECG -> 12 leads, stored,
published on MQTT, and drawn by `wgw plot`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import sys
from typing import TYPE_CHECKING, Any

import aiomqtt
import yaml

from gateway.config import Settings
from gateway.daemon import Daemon
from gateway.emulator.app import STATE_KEY
from tests.support import wait_for

if TYPE_CHECKING:
    from pathlib import Path

    from aiohttp.test_utils import TestServer

    from tests.conftest import Broker


def config_for(tmp_path: Path, broker: Broker, emulator: TestServer, prefix: str) -> dict[str, Any]:
    return {
        "gateway_id": "gw",
        "ble": {
            "backend": "sim",
            "sim": {
                "speed": 4.0,  # ten-second windows in 2.5 s
                "advert_interval_ms": 10,
                "devices": [
                    {"model": "armband", "address": "5A:00:00:00:00:01"},
                    {"model": "patch", "address": "5A:00:00:00:00:02"},
                ],
            },
        },
        "devices": [
            {
                "id": "arm",
                "address": "5A:00:00:00:00:01",
                "pmd": [
                    {
                        "measurement": "ppg",
                        "sample_rate_hz": 135,
                        "resolution_bits": 22,
                        "channels": 4,
                    }
                ],
            },
            {
                "id": "patch",
                "address": "5A:00:00:00:00:02",
                "pmd": [
                    {
                        "measurement": "ecg",
                        "sample_rate_hz": 500,
                        "resolution_bits": 24,
                        "channels": 3,
                    }
                ],
            },
        ],
        "storage": {"path": str(tmp_path / "wgw.sqlite"), "flush_interval_ms": 50},
        "mqtt": {"host": broker.host, "port": broker.port, "topic_prefix": prefix},
        "cloud": {
            "tcm": {
                "base_url": str(emulator.make_url("/api/v1")),
                "api_key": "tcm-demo-key",
                "plan": "enterprise",
            },
            "heartvoice": {
                "base_url": str(emulator.make_url("")).rstrip("/"),
                "api_key": "heartvoice-demo-key",
            },
        },
        "conversion": {
            "enabled": True,
            "interval_s": 0,
            "twelve_lead": True,
            "max_requests_per_min": 600,
        },
        "http": {"enabled": False},
    }


async def test_ppg_and_ecg_windows_become_stored_published_and_plotted_12_leads(
    tmp_path: Path, broker: Broker, emulator: TestServer, topic_prefix: str
) -> None:
    """Test both conversion paths end to end, then `wgw plot` on the stored result."""
    raw = config_for(tmp_path, broker, emulator, topic_prefix)
    daemon = Daemon(Settings.model_validate(raw))
    published: list[tuple[str, dict[str, Any]]] = []

    async def subscribe(ready: asyncio.Event) -> None:
        async with aiomqtt.Client(broker.host, broker.port) as client:
            await client.subscribe(f"{topic_prefix}/gw/+/ecg12", qos=1)
            await client.subscribe(f"{topic_prefix}/gw/+/ecg_from_ppg", qos=1)
            ready.set()
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                published.append((str(message.topic), json.loads(message.payload)))

    ready = asyncio.Event()
    subscriber = asyncio.create_task(subscribe(ready))
    await ready.wait()
    runner = asyncio.create_task(daemon.run())
    try:
        await daemon.wait_ready()

        def topics() -> set[str]:
            return {
                topic.rsplit("/", 2)[-2] + "/" + topic.rsplit("/", 1)[-1] for topic, _ in published
            }

        await wait_for(
            lambda: {"arm/ecg_from_ppg", "arm/ecg12", "patch/ecg12"} <= topics(), timeout_s=30
        )
    finally:
        daemon.stop()
        await runner
        subscriber.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await subscriber
    stats = await daemon.statistics()
    assert stats.conversion is not None
    assert stats.conversion.converted >= 2
    assert stats.conversion.failed == 0
    assert emulator.app[STATE_KEY].heartvoice_requests >= 3
    twelve = next(body for topic, body in published if topic.endswith("patch/ecg12"))
    assert twelve["rate_hz"] == 500
    assert len(twelve["samples"]) == 5000 and len(twelve["samples"][0]) == 12  # 10 s x 12 leads
    with sqlite3.connect(tmp_path / "wgw.sqlite") as db:
        stored = dict(
            db.execute(
                "SELECT device_id || '/' || stream, COUNT(*) FROM records"
                " WHERE stream IN ('ecg12', 'ecg_from_ppg') GROUP BY 1"
            ).fetchall()
        )
    assert stored.keys() == {"arm/ecg_from_ppg", "arm/ecg12", "patch/ecg12"}

    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(raw))
    out = tmp_path / "ecg.png"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "plot",
        "--device",
        "patch",
        "--out",
        str(out),
        "--config",
        str(config),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()
    assert "patch, 12 leads from" in stdout.decode()
    png = out.read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "plot",
        "--device",
        "patch",
        "--at",
        "2001-01-01T00:00:00Z",
        "--out",
        str(out),
        "--config",
        str(config),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await process.communicate()
    assert process.returncode == 1
    assert "no 12-lead result for 'patch' at or before 2001" in stderr.decode()
