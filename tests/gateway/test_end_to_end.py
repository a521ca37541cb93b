"""End to end: a simulated watch -> the daemon -> a real Mosquitto and the cloud emulator."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import TYPE_CHECKING, Any

import aiomqtt
import pytest

from gateway.config import Settings
from gateway.daemon import Daemon
from gateway.emulator.app import STATE_KEY
from tests.support import wait_for

if TYPE_CHECKING:
    from pathlib import Path

    from aiohttp.test_utils import TestServer

    from drivers.sim.devices import SimDevice
    from tests.conftest import Broker


def settings_for(
    tmp_path: Path, broker: Broker, emulator: TestServer, prefix: str, backend: str = "sim"
) -> Settings:
    return Settings.model_validate(
        {
            "gateway_id": "gw",
            "ble": {
                "backend": backend,
                "reconnect_min_s": 0.01,
                "reconnect_max_s": 0.1,
                "sim": {
                    "advert_interval_ms": 10,
                    "devices": [
                        {
                            "model": "armband",
                            "address": "5A:00:00:00:00:01",
                            "heart_rate_interval_ms": 20,
                            "malformed_rate": 0.1,
                        }
                    ],
                },
            },
            "devices": [
                {
                    "id": "watch-01",
                    "address": "5A:00:00:00:00:01",
                    "pmd": [
                        {
                            "measurement": "ppg",
                            "sample_rate_hz": 135,
                            "resolution_bits": 22,
                            "channels": 4,
                        }
                    ],
                }
            ],
            "storage": {"path": str(tmp_path / "wgw.sqlite"), "flush_interval_ms": 20},
            "mqtt": {
                "host": broker.host,
                "port": broker.port,
                "topic_prefix": prefix,
                "state_interval_s": 0.05,
            },
            "cloud": {
                "tcm": {
                    "plan": "enterprise",
                    "base_url": str(emulator.make_url("/api/v1")),
                    "email": "demo@example.com",
                    "password": "demo-password",
                }
            },
            "sync": {"min_request_interval_s": 0.05, "record_interval_s": 0},
            "http": {"port": 0},
        }
    )


@pytest.mark.parametrize("backend", ["sim", "bumble"])
async def test_every_reading_reaches_mqtt_and_the_upload_api(
    tmp_path: Path, broker: Broker, emulator: TestServer, topic_prefix: str, backend: str
) -> None:
    """Test that MQTT and the emulator each get exactly the readings the arm band sent, in
    order: on our simulator, and on bumble's stack (the same model over real ATT, its PPG
    frames fitted to the exchanged MTU).
    """
    settings = settings_for(tmp_path, broker, emulator, topic_prefix, backend)
    daemon = Daemon(settings)
    assert daemon.sim_world is not None
    watch: SimDevice = daemon.sim_world.peripherals["5A:00:00:00:00:01"]  # type: ignore[assignment]
    messages: list[dict[str, Any]] = []
    gaps: list[dict[str, Any]] = []
    states: list[dict[str, Any]] = []

    async def subscribe(ready: asyncio.Event) -> None:
        async with aiomqtt.Client(broker.host, broker.port) as client:
            await client.subscribe(f"{topic_prefix}/gw/#", qos=1)
            ready.set()
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                leaf = str(message.topic).rsplit("/", 1)[-1]
                if leaf == "status":
                    continue
                body = json.loads(message.payload)
                if leaf == "vitals" and body["kind"] == "heart_rate":
                    messages.append(body)
                elif leaf == "gaps":
                    gaps.append(body)
                elif leaf == "state":
                    states.append(body)

    ready = asyncio.Event()
    subscriber = asyncio.create_task(subscribe(ready))
    await ready.wait()
    runner = asyncio.create_task(daemon.run())
    try:
        await daemon.wait_ready()
        await wait_for(lambda: watch.counters["heart_rate"].sent >= 40)
        watch.stop()  # the device stops measuring; everything it sent must arrive
        sent = watch.counters["heart_rate"].values_sent
        state = emulator.app[STATE_KEY]
        # the live lane may overtake the backfill: subscribers de-duplicate by seq
        await wait_for(lambda: len({m["seq"] for m in messages}) == len(sent))
        await wait_for(lambda: len(state.records.get("watch-01", [])) == len(sent))

        async def samples_arrived() -> bool:  # over bumble, some may still be on the radio
            return (await daemon.statistics()).devices[0].samples == watch.counters["ppg"].sent

        await wait_for(samples_arrived)
        gap_count = sum(s.gaps for s in (await daemon.statistics()).devices[0].streams)
        await wait_for(lambda: len({(g["stream"], g["seq"]) for g in gaps}) == gap_count)
    finally:
        daemon.stop()
        await runner
        subscriber.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await subscriber
    stats = await daemon.statistics()

    by_seq = {m["seq"]: m for m in messages}
    assert sorted(by_seq) == list(range(len(sent)))
    assert [by_seq[s]["values"]["heart_rate_bpm"] for s in sorted(by_seq)] == sent
    assert {m["device_id"] for m in messages} == {"watch-01"}
    assert len(messages) - len(by_seq) <= 2  # a reading both lanes sent: rare, and harmless
    uploaded = state.records["watch-01"]
    assert [r["heart_rate"] for r in uploaded] == sent
    assert [r["timestamp"] for r in uploaded] == [by_seq[s]["timestamp"] for s in sorted(by_seq)]
    assert all(r["blood_pressure"] is None for r in uploaded)
    assert state.duplicates["watch-01"] == 0
    (device,) = stats.devices
    malformed = watch.counters["heart_rate"].malformed + watch.counters["ppg"].malformed_packets
    assert device.decode_errors == malformed > 0
    assert device.samples == watch.counters["ppg"].sent > 0
    assert stats.outbox.backlog["mqtt"].pending == 0
    assert gap_count > 0
    assert {g["reason"] for g in gaps} == {"malformed"}
    assert all(g["from"] <= g["to"] for g in gaps)
    assert states[-1]["device_id"] == "watch-01"
    assert states[-1]["battery_pct"] == 90
    assert states[-1]["streams"]["ppg"]["units"] > 0
    assert stats.outbox.backlog["health_upload"].pending == 0
