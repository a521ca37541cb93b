"""Conversion in the daemon: PPG -> ECG -> 12 leads and 3-lead ECG -> 12 leads, stored,
published on MQTT, and drawn by `wgw plot`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from typing import TYPE_CHECKING, Any

import aiomqtt
import yaml

from gateway.config import Settings
from gateway.daemon import Daemon
from gateway.emulator.app import STATE_KEY
from tests.support import daemon_config, run_wgw, wait_for

if TYPE_CHECKING:
    from pathlib import Path

    from aiohttp.test_utils import TestServer

    from tests.conftest import Broker


def pmd(measurement: str, rate_hz: int, bits: int, channels: int) -> dict[str, object]:
    return {
        "measurement": measurement,
        "sample_rate_hz": rate_hz,
        "resolution_bits": bits,
        "channels": channels,
    }


def config_for(tmp_path: Path, broker: Broker, emulator: TestServer, prefix: str) -> dict[str, Any]:
    emulator_url = str(emulator.make_url("")).rstrip("/")
    return daemon_config(
        tmp_path,
        emulator_url,
        [
            {"model": "armband", "address": "5A:00:00:00:00:01"},
            {"model": "patch", "address": "5A:00:00:00:00:02"},
        ],
        [
            {"id": "arm", "address": "5A:00:00:00:00:01", "pmd": [pmd("ppg", 135, 22, 4)]},
            {"id": "patch", "address": "5A:00:00:00:00:02", "pmd": [pmd("ecg", 500, 24, 3)]},
        ],
        ble={"sim": {"speed": 4.0}},  # ten-second windows in 2.5 s
        mqtt={"enabled": True, "host": broker.host, "port": broker.port, "topic_prefix": prefix},
        cloud={"heartvoice": {"base_url": emulator_url, "api_key": "heartvoice-demo-key"}},
        conversion={
            "enabled": True,
            "interval_s": 0,
            "twelve_lead": True,
            "max_requests_per_min": 600,
        },
    )


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
    code, stdout, stderr = await run_wgw(
        "plot", "--device", "patch", "--out", str(out), "--config", str(config)
    )
    assert code == 0, stderr
    assert "patch, 12 leads from" in stdout
    assert out.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    code, _, stderr = await run_wgw(
        "plot",
        "--device",
        "patch",
        "--at",
        "2001-01-01T00:00:00Z",
        "--out",
        str(out),
        "--config",
        str(config),
    )
    assert code == 1
    assert "no 12-lead result for 'patch' at or before 2001" in stderr
