"""Home Assistant's MQTT discovery schema for the two platforms the gateway announces, as of
Home Assistant 2025.10+: the fields of its MQTT sensor and binary sensor (docs:
integrations/sensor.mqtt and binary_sensor.mqtt; code: components/mqtt/schemas.py, sensor.py,
binary_sensor.py), checked key by key as its voluptuous schemas check them.
"""

from __future__ import annotations

from typing import Any, Final

AVAILABILITY_MODES: Final = {"all", "any", "latest"}
ENTITY_CATEGORIES: Final = {"config", "diagnostic"}
STATE_CLASSES: Final = {"measurement", "measurement_angle", "total", "total_increasing"}
SENSOR_DEVICE_CLASSES: Final = {"battery", "temperature", "heart_rate", "pressure", None}
BINARY_SENSOR_DEVICE_CLASSES: Final = {"connectivity", "problem", "running", None}

DEVICE: Final = {
    "configuration_url", "connections", "hw_version", "identifiers", "manufacturer", "model",
    "model_id", "name", "serial_number", "suggested_area", "sw_version", "via_device",
}  # fmt: skip
ORIGIN: Final = {"name", "sw_version", "support_url"}
AVAILABILITY_ITEM: Final = {"topic", "payload_available", "payload_not_available", "value_template"}
COMMON: Final = {
    "availability", "availability_mode", "availability_template", "availability_topic",
    "default_entity_id", "device", "enabled_by_default", "encoding", "entity_category",
    "entity_picture", "icon", "json_attributes_template", "json_attributes_topic", "name",
    "object_id", "origin", "payload_available", "payload_not_available", "platform", "qos",
    "unique_id", "expire_after", "force_update", "state_topic", "value_template",
}  # fmt: skip
PLATFORM: Final = {
    "sensor": COMMON | {
        "device_class", "last_reset_value_template", "options", "state_class",
        "suggested_display_precision", "unit_of_measurement",
    },
    "binary_sensor": COMMON | {"device_class", "off_delay", "payload_off", "payload_on"},
}  # fmt: skip


def problems(component: str, config: dict[str, Any]) -> list[str]:
    """What Home Assistant would refuse or ignore in ``config`` (empty: accepted as meant)."""
    found = [f"unknown key {key}" for key in config.keys() - PLATFORM[component]]
    if "state_topic" not in config:
        found.append("state_topic is required")
    found += _availability(config)
    classes = SENSOR_DEVICE_CLASSES if component == "sensor" else BINARY_SENSOR_DEVICE_CLASSES
    checks = {
        "entity_category": config.get("entity_category", "diagnostic") in ENTITY_CATEGORIES,
        "device_class": config.get("device_class") in classes,
        "state_class": config.get("state_class", "measurement") in STATE_CLASSES,
        "expire_after": isinstance(config.get("expire_after", 1), int)
        and config.get("expire_after", 1) > 0,
        "default_entity_id": _entity_id_of(component, config.get("default_entity_id")),
    }
    found += [f"{key}: {config.get(key)}" for key, ok in checks.items() if not ok]
    if (device := config.get("device")) is not None:
        found += _device(device)
    origin = config.get("origin")
    if origin is not None and ("name" not in origin or origin.keys() - ORIGIN):
        found.append(f"origin {origin}")
    return found


def _availability(config: dict[str, Any]) -> list[str]:
    found = [
        f"availability item {item}"
        for item in config.get("availability", [])
        if "topic" not in item or item.keys() - AVAILABILITY_ITEM
    ]
    if "availability" in config and "availability_topic" in config:
        found.append("availability and availability_topic are exclusive")
    if config.get("availability_mode", "latest") not in AVAILABILITY_MODES:
        found.append("availability_mode")
    return found


def _entity_id_of(component: str, entity_id: str | None) -> bool:
    """An entity id of ``component``'s domain, e.g. ``sensor.wgw_gw_watch_heart_rate``."""
    if entity_id is None:
        return True
    domain, _, name = entity_id.partition(".")
    return domain == component and bool(name) and "." not in name


def _device(device: dict[str, Any]) -> list[str]:
    found = [f"unknown device key {key}" for key in device.keys() - DEVICE]
    if not device.get("identifiers") and not device.get("connections"):
        found.append("a device needs identifiers or connections")
    if any(len(pair) != 2 for pair in device.get("connections", [])):
        found.append("connections are [type, value] pairs")
    return found
