"""Home Assistant MQTT discovery (``mqtt.homeassistant``): vitals, battery, connection.

Each device's sensors read the gateway's own retained topics: vitals a retained
``<prefix>/<gateway>/<device>/latest`` object (the newest value of each field, in mmHg and
degrees C whatever the device sent), battery and connection the retained ``state`` topic. A
vitals sensor is announced when its field is first seen, so Home Assistant never reads a field
that is not there. Availability follows the gateway's ``status`` topic (its will: ``offline``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from drivers.frames import VitalReading
from gateway import units

if TYPE_CHECKING:
    from gateway.readings import Reading


@dataclass(frozen=True, slots=True)
class Sensor:
    """One Home Assistant entity and where its value comes from."""

    field: str
    name: str
    unit: str | None
    device_class: str | None
    source: str  # "latest" or "state"
    template: str
    component: str = "sensor"


VITALS: Final = (
    Sensor("heart_rate", "Heart rate", "bpm", None, "latest", "{{ value_json.heart_rate }}"),
    Sensor("spo2", "SpO2", "%", None, "latest", "{{ value_json.spo2 }}"),
    Sensor(
        "temperature", "Temperature", "°C", "temperature", "latest", "{{ value_json.temperature }}"
    ),
    Sensor("systolic", "Systolic pressure", "mmHg", None, "latest", "{{ value_json.systolic }}"),
    Sensor("diastolic", "Diastolic pressure", "mmHg", None, "latest", "{{ value_json.diastolic }}"),
)
BATTERY: Final = Sensor(
    "battery", "Battery", "%", "battery", "state", "{{ value_json.battery_pct }}"
)
CONNECTION: Final = Sensor(
    "connection",
    "Connected",
    None,
    "connectivity",
    "state",
    "{{ 'ON' if value_json.connected else 'OFF' }}",
    component="binary_sensor",
)


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
    sensor: Sensor, *, discovery_prefix: str, topic_prefix: str, gateway_id: str, device_id: str
) -> tuple[str, bytes]:
    """The retained config message that announces ``sensor`` of ``device_id``."""
    node = _safe(f"wgw_{gateway_id}_{device_id}")
    base = f"{topic_prefix}/{gateway_id}/{device_id}"
    config: dict[str, object] = {
        "name": sensor.name,
        "unique_id": f"{node}_{sensor.field}",
        "object_id": f"{node}_{sensor.field}",
        "state_topic": f"{base}/{sensor.source}",
        "value_template": sensor.template,
        "availability_topic": f"{topic_prefix}/{gateway_id}/status",
        "payload_available": "online",
        "payload_not_available": "offline",
        "device": {
            "identifiers": [node],
            "name": device_id,
            "manufacturer": "wearable-gateway",
            "via_device": _safe(f"wgw_{gateway_id}"),
        },
    }
    if sensor.unit is not None:
        config["unit_of_measurement"] = sensor.unit
    if sensor.device_class is not None:
        config["device_class"] = sensor.device_class
    if sensor.component == "sensor":
        config["state_class"] = "measurement"
    topic = f"{discovery_prefix}/{sensor.component}/{node}/{sensor.field}/config"
    return topic, json.dumps(config, separators=(",", ":")).encode()


def _safe(text: str) -> str:
    """Home Assistant's node and object ids take letters, digits, ``_`` and ``-`` only."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", text)
