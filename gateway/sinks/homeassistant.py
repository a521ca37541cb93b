"""Home Assistant MQTT discovery (``mqtt.homeassistant``): vitals, battery, connection.

Each device's sensors read the gateway's own retained topics: a vital its own
``<prefix>/<gateway>/<device>/latest/<field>`` (``{"<field>": value}`` in mmHg and degrees C
whatever the device sent; a topic of its own, so that ``expire_after`` marks a vital stale when
that vital stops, not when the device does), battery and connection the retained ``state``.
A vitals sensor is announced when its field is first seen, so Home Assistant never reads a
field that is not there. The gateway is a device of its own (its status as a connectivity
sensor) that every wearable is connected through (``via_device``). Everything is unavailable
while the gateway is offline; heart rate also while its device is disconnected, and each vital
once it has not been updated for a few of its intervals (``expire_after``: a cuff may
disconnect between measurements, and its last one still stands).
The schema is Home Assistant's of 2025.10 and later (``default_entity_id``), with ``object_id``
kept for older releases (newer ones ignore it).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from drivers.frames import VitalReading
from gateway import units
from gateway.version import gateway_version

if TYPE_CHECKING:
    from collections.abc import Mapping

    import aiomqtt

    from drivers.ble.link_spec import LinkStatistics
    from gateway.readings import Reading


@dataclass(frozen=True, slots=True)
class Sensor:
    """One Home Assistant entity and where its value comes from."""

    field: str
    name: str
    unit: str | None
    device_class: str | None
    source: str  # "latest" (its own topic) or "state"
    template: str
    component: str = "sensor"
    expire_after_s: int | None = None  # the value is stale this long after its last update
    diagnostic: bool = False  # about the device, not what it measures
    # measured all the time while connected (heart rate), not now and then (a cuff, which
    # may disconnect between measurements): unavailable while its device is disconnected
    continuous: bool = False


def _vital(
    field: str,
    name: str,
    unit: str,
    expire_after_s: int,
    cls: str | None = None,
    *,
    continuous: bool = False,
) -> Sensor:
    template = f"{{{{ value_json.{field} }}}}"
    return Sensor(
        field,
        name,
        unit,
        cls,
        "latest",
        template,
        expire_after_s=expire_after_s,
        continuous=continuous,
    )


# A heart rate comes every second; SpO2 and temperature every few minutes at most; a cuff
# measures every 15 minutes or so: each is stale after a few of its own intervals.
VITALS: Final = (
    _vital("heart_rate", "Heart rate", "bpm", 120, continuous=True),
    _vital("spo2", "SpO2", "%", 1800),
    _vital("temperature", "Temperature", "°C", 1800, "temperature"),
    _vital("systolic", "Systolic pressure", "mmHg", 3600),
    _vital("diastolic", "Diastolic pressure", "mmHg", 3600),
)
BATTERY: Final = Sensor(
    "battery",
    "Battery",
    "%",
    "battery",
    "state",
    "{{ value_json.battery_pct }}",
    diagnostic=True,
)
CONNECTION: Final = Sensor(
    "connection",
    "Connected",
    None,
    "connectivity",
    "state",
    "{{ 'ON' if value_json.connected else 'OFF' }}",
    component="binary_sensor",
    diagnostic=True,
)
CONNECTION_BLUETOOTH: Final = "bluetooth"  # Home Assistant's device registry connection type


@dataclass(frozen=True, slots=True)
class DeviceFacts:
    """What the gateway knows of a wearable: its address and its Device Information strings."""

    address: str | None = None
    manufacturer: str | None = None
    model: str | None = None
    firmware: str | None = None
    serial: str | None = None


@dataclass(frozen=True, slots=True)
class Topics:
    """Where discovery goes and where the gateway's own topics are."""

    discovery_prefix: str
    topic_prefix: str
    gateway_id: str

    @property
    def gateway_node(self) -> str:
        """The gateway's node id (and its device's identifier)."""
        return _safe(f"wgw_{self.gateway_id}")

    @property
    def status(self) -> str:
        """The gateway's ``online``/``offline`` topic (its will)."""
        return f"{self.topic_prefix}/{self.gateway_id}/status"

    def device(self, device_id: str) -> str:
        """A wearable's topics' common start."""
        return f"{self.topic_prefix}/{self.gateway_id}/{device_id}"

    def latest(self, device_id: str, field: str) -> str:
        """The retained topic of one vital's newest value."""
        return f"{self.device(device_id)}/latest/{field}"


def latest_fields(reading: Reading) -> dict[str, float]:
    """The sensor fields a vitals reading updates (``{}`` for anything else)."""
    frame = reading.frame
    if not isinstance(frame, VitalReading):
        return {}
    values = frame.values
    fields: dict[str, object] = {}
    if frame.stream == "heart_rate":
        fields["heart_rate"] = values.get("heart_rate_bpm")
    elif frame.stream in ("spo2", "spo2_spot"):
        fields["spo2"] = values.get("spo2_pct")
        fields["heart_rate"] = values.get("pulse_rate_bpm")
    elif frame.stream == "blood_pressure":
        pressure = units.pressure_mmhg(values)
        if pressure is not None:
            fields["systolic"], fields["diastolic"] = pressure
    elif frame.stream == "temperature":
        fields["temperature"] = units.temperature_c(values)
    return {k: float(v) for k, v in fields.items() if isinstance(v, int | float)}


def discovery(
    sensor: Sensor, topics: Topics, device_id: str, facts: DeviceFacts
) -> tuple[str, bytes]:
    """The retained config message that announces ``sensor`` of ``device_id``."""
    node = _safe(f"{topics.gateway_node}_{device_id}")
    base = topics.device(device_id)
    device: dict[str, object] = {
        "identifiers": [node],
        "name": device_id,
        "via_device": topics.gateway_node,
    }
    if facts.address is not None:
        device["connections"] = [[CONNECTION_BLUETOOTH, facts.address.lower()]]
    known = {
        "manufacturer": facts.manufacturer,
        "model": facts.model,
        "sw_version": facts.firmware,
        "serial_number": facts.serial,
    }
    device.update({key: value for key, value in known.items() if value})
    availability: list[dict[str, str]] = [{"topic": topics.status}]
    if sensor.continuous:  # only while its device is connected, too
        availability.append(
            {
                "topic": f"{base}/state",
                "value_template": "{{ 'online' if value_json.connected else 'offline' }}",
            }
        )
    state_topic = (
        topics.latest(device_id, sensor.field) if sensor.source == "latest" else f"{base}/state"
    )
    config = _entity(sensor, node, state_topic, availability)
    config["device"] = device
    topic = f"{topics.discovery_prefix}/{sensor.component}/{node}/{sensor.field}/config"
    return topic, json.dumps(config, separators=(",", ":")).encode()


def gateway_discovery(topics: Topics) -> tuple[str, bytes]:
    """The retained config message that announces the gateway itself: its status."""
    node = topics.gateway_node
    status = Sensor(
        "status", "Status", None, "connectivity", "status", "", "binary_sensor", diagnostic=True
    )
    config = _entity(status, node, topics.status, [])
    del config["value_template"]
    config["payload_on"], config["payload_off"] = "online", "offline"
    config["device"] = {
        "identifiers": [node],
        "name": f"wearable-gateway {topics.gateway_id}",
        "manufacturer": "wearable-gateway",
        "model": "wearable-gateway",
        "sw_version": gateway_version(),
    }
    topic = f"{topics.discovery_prefix}/binary_sensor/{node}/status/config"
    return topic, json.dumps(config, separators=(",", ":")).encode()


def _entity(
    sensor: Sensor, node: str, state_topic: str, availability: list[dict[str, str]]
) -> dict[str, object]:
    """What every entity's config holds; an empty ``availability``: always available."""
    config: dict[str, object] = {
        "name": sensor.name,
        "unique_id": f"{node}_{sensor.field}",
        "default_entity_id": f"{sensor.component}.{node}_{sensor.field}",
        "object_id": f"{node}_{sensor.field}",  # before Home Assistant 2025.10
        "state_topic": state_topic,
        "value_template": sensor.template,
        "origin": {"name": "wearable-gateway", "sw_version": gateway_version()},
    }
    if availability:
        config["availability"] = availability
        config["availability_mode"] = "all"
    if sensor.unit is not None:
        config["unit_of_measurement"] = sensor.unit
    if sensor.device_class is not None:
        config["device_class"] = sensor.device_class
    if sensor.component == "sensor":
        config["state_class"] = "measurement"
    if sensor.expire_after_s is not None:
        config["expire_after"] = sensor.expire_after_s
    if sensor.diagnostic:
        config["entity_category"] = "diagnostic"
    return config


def _safe(text: str) -> str:
    """Home Assistant's node and object ids take letters, digits, ``_`` and ``-`` only."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", text)


class Announcer:
    """What one broker connection announced, and each device's newest vitals to re-announce.

    A config is published again when its body changes (a device's firmware read later, a new
    field), and every config after a reconnect (a broker without persistence forgets them).
    """

    def __init__(self, topics: Topics) -> None:
        self._topics = topics
        self._latest: dict[str, dict[str, float]] = {}
        self._announced: dict[str, bytes] = {}  # config topic -> the body this connection sent

    async def connected(self, client: aiomqtt.Client, facts: Mapping[str, DeviceFacts]) -> None:
        """A (re)connect: the gateway, then every vital seen so far, with its newest value."""
        self._announced.clear()
        await self._announce(client, *gateway_discovery(self._topics))
        for device_id, latest in self._latest.items():
            await self._vitals(client, device_id, latest, facts.get(device_id, DeviceFacts()))

    async def reading(self, client: aiomqtt.Client, reading: Reading, facts: DeviceFacts) -> None:
        """A vitals reading went out: its fields' retained topics (announced first if new)."""
        if reading.backfilled:  # not the latest, however new
            return
        fields = latest_fields(reading)
        if not fields:
            return
        device_id = reading.frame.device_id
        self._latest.setdefault(device_id, {}).update(fields)
        await self._vitals(client, device_id, fields, facts)

    async def device(
        self, client: aiomqtt.Client, device_id: str, state: DeviceFacts, *, battery: bool
    ) -> None:
        """A device's state was published: its connection (and battery, once known) sensors."""
        await self._announce(client, *discovery(CONNECTION, self._topics, device_id, state))
        if battery:
            await self._announce(client, *discovery(BATTERY, self._topics, device_id, state))

    async def _vitals(
        self,
        client: aiomqtt.Client,
        device_id: str,
        fields: Mapping[str, float],
        facts: DeviceFacts,
    ) -> None:
        for sensor in VITALS:
            if sensor.field in fields:
                await self._announce(client, *discovery(sensor, self._topics, device_id, facts))
                value = {sensor.field: fields[sensor.field]}
                body = json.dumps(value, separators=(",", ":")).encode()
                topic = self._topics.latest(device_id, sensor.field)
                await client.publish(topic, body, qos=0, retain=True)

    async def _announce(self, client: aiomqtt.Client, topic: str, body: bytes) -> None:
        if self._announced.get(topic) != body:
            await client.publish(topic, body, qos=1, retain=True)
            self._announced[topic] = body


def facts_of(state: LinkStatistics) -> DeviceFacts:
    """A link's address and Device Information strings."""
    info = state.device_info
    return DeviceFacts(
        state.address,
        info.get("manufacturer"),
        info.get("model"),
        info.get("firmware"),
        info.get("serial"),
    )
