"""Normalised 128-bit UUIDs of the GATT services and characteristics the gateway uses."""

from __future__ import annotations

from bleak.uuids import normalize_uuid_16

HEART_RATE_SERVICE = normalize_uuid_16(0x180D)
HEART_RATE_MEASUREMENT = normalize_uuid_16(0x2A37)
BATTERY_SERVICE = normalize_uuid_16(0x180F)
BATTERY_LEVEL = normalize_uuid_16(0x2A19)
