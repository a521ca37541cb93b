"""Fan-in through an existing broker: ``deploy/mosquitto/bridge.conf`` between two real
Mosquitto processes, the central one away for 30 s while the gateway publishes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

import aiomqtt
import pytest

from buffers.outbox import Outbox
from drivers.frames import VitalReading
from gateway.config import MqttConfig
from gateway.readings import Reading
from gateway.sinks import mqtt
from tests.conftest import Broker, make_broker
from tests.support import free_port, wait_for

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

BRIDGE = Path(__file__).parents[2] / "deploy" / "mosquitto" / "bridge.conf"
DEVICES = ("strap-1", "watch-2")
OUTAGE_S = 30.0


def gateway_broker(folder: Path, central: Broker) -> Broker:
    """The gateway's local Mosquitto: a listener, and the shipped bridge file pointed at the
    central broker (no TLS on the loopback)."""
    folder.mkdir()
    port = free_port()
    user = "user root\n" if os.geteuid() == 0 else ""
    bridge = BRIDGE.read_text().replace("CENTRAL_HOST:8883", f"{central.host}:{central.port}")
    conf = folder / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\n{user}log_dest none\n"
        f"persistence_location {folder}/\n{bridge}"
    )
    return Broker("127.0.0.1", port, conf)


@contextlib.asynccontextmanager
async def listening(
    broker: Broker, client_id: str, got: dict[str, list[bytes]]
) -> AsyncIterator[None]:
    """Record the vitals seen on ``broker``: per device, each message's payload in arrival
    order. A persistent session: what arrives while this subscriber reconnects waits for it.
    """
    subscribed = asyncio.Event()

    async def run() -> None:
        while True:
            with contextlib.suppress(aiomqtt.MqttError):
                async with aiomqtt.Client(
                    broker.host, broker.port, identifier=client_id, clean_session=False
                ) as client:
                    await client.subscribe("wgw/+/+/vitals", qos=1)
                    subscribed.set()
                    async for message in client.messages:
                        assert isinstance(message.payload, bytes)
                        body = json.loads(message.payload)
                        got[body["device_id"]].append(message.payload)
            await asyncio.sleep(0.2)  # the broker is away: try again

    task = asyncio.create_task(run())
    await asyncio.wait_for(subscribed.wait(), 10)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.mark.timeout(180)
async def test_every_vitals_message_reaches_the_central_broker_across_its_outage(
    tmp_path: Path,
) -> None:
    """Test the gateway publishing to its local broker, bridged to a central one that stops
    for 30 s meanwhile: a subscriber on the central broker gets every vitals message the
    gateway published, at least once, in order per device.
    """
    central = make_broker(tmp_path, persistent=True)  # its subscriber's session survives
    local = gateway_broker(tmp_path / "local", central)
    central.start()
    local.start()
    published: dict[str, list[bytes]] = defaultdict(list)
    upstream: dict[str, list[bytes]] = defaultdict(list)
    config = MqttConfig(host=local.host, port=local.port)  # topic prefix wgw, as bridged
    try:
        async with (
            listening(local, "local-subscriber", published),
            listening(central, "central-subscriber", upstream),
            Outbox(tmp_path / "o.sqlite", {mqtt.SINK: mqtt.wants}) as outbox,
            asyncio.TaskGroup() as tg,
        ):
            sink = mqtt.MqttSink(outbox, config, "gw")
            running = tg.create_task(sink.run())
            await wait_for(lambda: sink.statistics().connected)
            loop = asyncio.get_running_loop()
            beat = 0

            async def publish_for(seconds: float) -> None:
                nonlocal beat
                until = loop.time() + seconds
                while loop.time() < until:
                    for device in DEVICES:
                        frame = VitalReading(
                            device, "heart_rate", beat, 1.8e9 + beat, {"heart_rate_bpm": beat}
                        )
                        sink.offer_live(Reading(frame))
                    beat += 1
                    await asyncio.sleep(0.1)  # the devices' pace: ten readings a second each

            await publish_for(2.0)
            await wait_for(lambda: all(len(upstream[d]) > 0 for d in DEVICES), timeout_s=20)
            central.stop()
            await publish_for(OUTAGE_S)
            central.start()
            await publish_for(2.0)
            await wait_for(lambda: all(len(published[d]) == beat for d in DEVICES))
            await wait_for(
                lambda: all(set(upstream[d]) >= set(published[d]) for d in DEVICES),
                timeout_s=60,
            )
            running.cancel()
    finally:
        local.stop()
        central.stop()
    assert sink.statistics().live_dropped == 0
    for device in DEVICES:
        rates = [json.loads(p)["values"]["heart_rate_bpm"] for p in published[device]]
        assert rates == list(range(beat))  # what the gateway published, each once
        first_seen = list(dict.fromkeys(upstream[device]))  # at least once; duplicates kept out
        assert first_seen == published[device]  # every one, byte for byte, in order
