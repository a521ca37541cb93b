"""Broker restart: every QoS 1 vitals message reaches a persistent subscriber, in order."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import TYPE_CHECKING, Any

import aiomqtt

from gateway.config import Settings
from gateway.daemon import Daemon
from tests.support import wait_for

if TYPE_CHECKING:
    from pathlib import Path

    from aiohttp.test_utils import TestServer

    from drivers.sim.devices import SimDevice
    from tests.conftest import Broker


async def test_broker_restart_loses_no_vitals(
    tmp_path: Path, own_broker: Broker, emulator: TestServer
) -> None:
    """Test a broker stopped for a while: the gateway queues, then delivers every reading once."""
    settings = Settings.model_validate(
        {
            "gateway_id": "gw",
            "ble": {
                "backend": "sim",
                "reconnect_min_s": 0.01,
                "sim": {
                    "advert_interval_ms": 10,
                    "devices": [
                        {
                            "model": "strap",
                            "address": "5A:00:00:00:00:01",
                            "heart_rate_interval_ms": 50,
                        }
                    ],
                },
            },
            "devices": [{"id": "s1", "address": "5A:00:00:00:00:01"}],
            "storage": {"path": str(tmp_path / "wgw.sqlite"), "flush_interval_ms": 50},
            "mqtt": {
                "host": own_broker.host,
                "port": own_broker.port,
                "topic_prefix": "restart",
                "reconnect_min_s": 0.05,
                "reconnect_max_s": 0.2,
                "publish_waveforms": False,
            },
            "cloud": {
                "tcm": {
                    "base_url": str(emulator.make_url("/api/v1")),
                    "api_key": "tcm-demo-key",
                    "plan": "enterprise",
                }
            },
            "http": {"enabled": False},
        }
    )
    received: list[dict[str, Any]] = []

    async def subscriber(ready: asyncio.Event) -> None:
        # a persistent session: the broker keeps QoS 1 messages for us while we are away
        while True:
            try:
                async with aiomqtt.Client(
                    own_broker.host, own_broker.port, identifier="restart-sub", clean_session=False
                ) as client:
                    await client.subscribe("restart/gw/+/vitals", qos=1)
                    ready.set()
                    async for message in client.messages:
                        assert isinstance(message.payload, bytes)
                        received.append(json.loads(message.payload))
            except aiomqtt.MqttError:
                await asyncio.sleep(0.05)

    ready = asyncio.Event()
    listener = asyncio.create_task(subscriber(ready))
    await ready.wait()
    daemon = Daemon(settings)
    assert daemon.sim_world is not None
    strap: SimDevice = daemon.sim_world.peripherals["5A:00:00:00:00:01"]  # type: ignore[assignment]
    runner = asyncio.create_task(daemon.run())
    try:
        await wait_for(lambda: len(received) >= 10)
        readings = strap.counters["heart_rate"]
        own_broker.stop()
        down_at = readings.sent
        await wait_for(lambda: readings.sent >= down_at + 30)  # 1.5 s of readings while away
        own_broker.start()
        up_at = readings.sent
        await wait_for(lambda: readings.sent >= up_at + 20)
        strap.stop()
        sent = strap.counters["heart_rate"].values_sent
        await wait_for(lambda: len({m["seq"] for m in received}) == len(sent), timeout_s=20)
    finally:
        daemon.stop()
        await runner
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
    by_seq: dict[int, dict[str, Any]] = {}
    for m in received:
        by_seq.setdefault(m["seq"], m)
    assert sorted(by_seq) == list(range(len(sent)))
    assert [by_seq[s]["values"]["heart_rate_bpm"] for s in sorted(by_seq)] == sent
    # what was read while the broker was away came back through the backlog, in order
    firsts = [m["seq"] for m in received if m is by_seq[m["seq"]]]
    outage = [seq for seq in firsts if down_at <= seq < up_at]
    assert outage == list(range(down_at, up_at))
