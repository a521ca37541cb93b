"""Home Assistant discovery: a simulated watch appears as sensors that read existing fields."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import TYPE_CHECKING, Any

import aiomqtt

from drivers.frames import VitalReading
from gateway.config import Settings
from gateway.daemon import Daemon
from gateway.readings import Reading
from gateway.sinks import homeassistant
from tests.support import daemon_config, wait_for

if TYPE_CHECKING:
    from pathlib import Path

    from aiohttp.test_utils import TestServer

    from tests.conftest import Broker


async def test_a_watch_is_announced_as_sensors_over_its_retained_topics(
    tmp_path: Path, broker: Broker, emulator: TestServer, topic_prefix: str
) -> None:
    """Test discovery configs for heart rate, SpO2, battery and connection, each pointing at a
    retained topic that holds the field its template reads.
    """
    ha_prefix = f"ha-{topic_prefix}"[:64]
    settings = Settings.model_validate(
        daemon_config(
            tmp_path,
            str(emulator.make_url("")),
            [{"model": "watch", "address": "5A:00:00:00:00:01"}],
            [{"id": "watch.01", "address": "5A:00:00:00:00:01"}],
            ble={"sim": {"speed": 5.0}},
            mqtt={
                "enabled": True,
                "host": broker.host,
                "port": broker.port,
                "topic_prefix": topic_prefix,
                "state_interval_s": 0.1,
                "homeassistant": True,
                "homeassistant_prefix": ha_prefix,
            },
        )
    )
    retained: dict[str, Any] = {}

    async def subscribe(ready: asyncio.Event) -> None:
        async with aiomqtt.Client(broker.host, broker.port) as client:
            await client.subscribe(f"{ha_prefix}/#", qos=1)
            await client.subscribe(f"{topic_prefix}/gw/#", qos=1)
            ready.set()
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                text = message.payload.decode()
                retained[str(message.topic)] = (
                    text if text in ("online", "offline") else (json.loads(text))
                )

    ready = asyncio.Event()
    subscriber = asyncio.create_task(subscribe(ready))
    await ready.wait()
    daemon = Daemon(settings)
    runner = asyncio.create_task(daemon.run())
    node = "wgw_gw_watch_01"  # the '.' is not allowed in Home Assistant ids
    wanted = {
        f"{ha_prefix}/sensor/{node}/heart_rate/config",
        f"{ha_prefix}/sensor/{node}/spo2/config",
        f"{ha_prefix}/sensor/{node}/battery/config",
        f"{ha_prefix}/binary_sensor/{node}/connection/config",
    }

    def field_of(config: dict[str, Any]) -> str:
        return str(config["value_template"].split("value_json.")[1].split()[0])

    def announced_and_readable() -> bool:
        return wanted <= retained.keys() and all(
            field_of(retained[t]) in retained.get(retained[t]["state_topic"], {}) for t in wanted
        )

    try:
        await daemon.wait_ready()
        await wait_for(announced_and_readable, timeout_s=20)
    finally:
        daemon.stop()
        await runner
        subscriber.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await subscriber
    for topic in wanted:
        config = retained[topic]
        assert config["availability_topic"] == f"{topic_prefix}/gw/status"
        assert config["device"]["identifiers"] == [node]
        assert config["unique_id"] == f"{node}_{topic.split('/')[-2]}"
        assert retained[config["state_topic"]][field_of(config)] is not None
    heart = retained[f"{ha_prefix}/sensor/{node}/heart_rate/config"]
    assert heart["state_topic"] == f"{topic_prefix}/gw/watch.01/latest"
    assert heart["unit_of_measurement"] == "bpm"
    assert 30 <= retained[heart["state_topic"]]["heart_rate"] <= 220
    assert retained[f"{ha_prefix}/sensor/{node}/battery/config"]["device_class"] == "battery"


def test_latest_fields_are_in_mmhg_and_celsius_and_skip_what_was_not_measured() -> None:
    """Test unit conversion and that a missing value never becomes a sensor field."""

    def reading(stream: str, values: dict[str, object]) -> Reading:
        return Reading(VitalReading("d", stream, 0, 1.8e9, values))

    pressure = reading("blood_pressure", {"systolic": 16.0, "diastolic": 10.0, "unit": "kPa"})
    assert homeassistant.latest_fields(pressure) == {"systolic": 120.0, "diastolic": 75.0}
    fever = reading("temperature", {"temperature": 100.4, "unit": "F"})
    assert homeassistant.latest_fields(fever) == {"temperature": 38.0}
    silent = reading("heart_rate", {"heart_rate_bpm": None})
    assert homeassistant.latest_fields(silent) == {}
    battery = reading("battery", {"battery_pct": 80})
    assert homeassistant.latest_fields(battery) == {}
    spot = reading("spo2_spot", {"spo2_pct": 97.0, "pulse_rate_bpm": 64.0})
    assert homeassistant.latest_fields(spot) == {"spo2": 97.0, "heart_rate": 64.0}
