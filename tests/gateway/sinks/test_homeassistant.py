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
from tests.gateway.sinks import ha_schema
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
    gateway_config = f"{ha_prefix}/binary_sensor/wgw_gw/status/config"
    wanted = {
        f"{ha_prefix}/sensor/{node}/heart_rate/config",
        f"{ha_prefix}/sensor/{node}/spo2/config",
        f"{ha_prefix}/sensor/{node}/battery/config",
        f"{ha_prefix}/binary_sensor/{node}/connection/config",
    }

    def field_of(config: dict[str, Any]) -> str:
        return str(config["value_template"].split("value_json.")[1].split()[0])

    def announced_and_readable() -> bool:
        return (
            gateway_config in retained
            and wanted <= retained.keys()
            and all(
                field_of(retained[t]) in retained.get(retained[t]["state_topic"], {})
                for t in wanted
            )
            # the device's Device Information, read at connect, made it into the configs
            and all("sw_version" in retained[t]["device"] for t in wanted)
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
    status = f"{topic_prefix}/gw/status"
    configs = {t: c for t, c in retained.items() if t.startswith(ha_prefix)}
    for topic, config in configs.items():
        component = topic.split("/")[1]
        assert ha_schema.problems(component, config) == [], topic
        assert config["origin"]["name"] == "wearable-gateway"
        assert config["default_entity_id"] == f"{component}.{config['unique_id']}"
        assert config["object_id"] == config["unique_id"]  # for releases before 2025.10
    gateway = retained[gateway_config]
    assert gateway["state_topic"] == status
    assert (gateway["payload_on"], gateway["payload_off"]) == ("online", "offline")
    assert gateway["device"]["identifiers"] == ["wgw_gw"]
    assert "availability" not in gateway  # it says offline itself
    for topic in wanted:
        config = retained[topic]
        device = config["device"]
        assert device["identifiers"] == [node]
        assert device["via_device"] == "wgw_gw"  # announced, above
        assert device["connections"] == [["bluetooth", "5a:00:00:00:00:01"]]
        assert (device["manufacturer"], device["model"]) == ("wearable-gateway simulator", "watch")
        assert device["sw_version"] == "1.0.0"
        assert config["unique_id"] == f"{node}_{topic.split('/')[-2]}"
        assert config["availability"][0] == {"topic": status}
        assert retained[config["state_topic"]][field_of(config)] is not None
    heart = retained[f"{ha_prefix}/sensor/{node}/heart_rate/config"]
    assert heart["state_topic"] == f"{topic_prefix}/gw/watch.01/latest/heart_rate"
    assert heart["unit_of_measurement"] == "bpm"
    assert heart["expire_after"] == 120  # a strap taken off: unavailable, not its last value
    assert "entity_category" not in heart
    # heart rate is available only while its device is connected (and the gateway online);
    # an occasional vital keeps its last value while the device is away, until it expires
    spo2 = retained[f"{ha_prefix}/sensor/{node}/spo2/config"]
    assert spo2["availability"] == [{"topic": status}] and spo2["expire_after"] == 1800
    (_, connected) = heart["availability"]
    assert connected["topic"] == f"{topic_prefix}/gw/watch.01/state"
    assert "value_json.connected" in connected["value_template"]
    assert heart["availability_mode"] == "all"
    assert 30 <= retained[heart["state_topic"]]["heart_rate"] <= 220
    battery = retained[f"{ha_prefix}/sensor/{node}/battery/config"]
    assert battery["device_class"] == "battery" and battery["entity_category"] == "diagnostic"
    connection = retained[f"{ha_prefix}/binary_sensor/{node}/connection/config"]
    assert connection["entity_category"] == "diagnostic"
    assert connection["availability"] == [{"topic": status}]  # shows OFF, not unavailable


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


def test_the_schema_check_refuses_what_home_assistant_would() -> None:
    """Test the checker the discovery test relies on: unknown keys, exclusive availability
    forms, malformed connections, a device without identity, an entity id of another domain, a
    bad expiry.
    """
    bad = {
        "state_topic": "t",
        "availability_topic": "a",
        "availability": [{"topic": "b", "colour": "red"}],
        "default_entity_id": "binary_sensor.x",
        "expire_after": 0,
        "device": {"name": "d", "connections": [["bluetooth"]]},
        "colour": "blue",
    }
    assert set(ha_schema.problems("sensor", bad)) == {
        "unknown key colour",
        "availability item {'topic': 'b', 'colour': 'red'}",
        "availability and availability_topic are exclusive",
        "expire_after: 0",
        "default_entity_id: binary_sensor.x",
        "connections are [type, value] pairs",
    }
    assert ha_schema.problems("binary_sensor", {"state_topic": "t", "device": {"name": "d"}}) == [
        "a device needs identifiers or connections"
    ]
    assert ha_schema.problems("sensor", {"state_topic": "t"}) == []
