"""Normalised 128-bit UUIDs of the GATT services and characteristics the gateway uses."""

from __future__ import annotations

from bleak.uuids import normalize_uuid_16

HEART_RATE_SERVICE = normalize_uuid_16(0x180D)
HEART_RATE_MEASUREMENT = normalize_uuid_16(0x2A37)
PULSE_OXIMETER_SERVICE = normalize_uuid_16(0x1822)
PLX_SPOT_CHECK = normalize_uuid_16(0x2A5E)
PLX_CONTINUOUS = normalize_uuid_16(0x2A5F)
BLOOD_PRESSURE_SERVICE = normalize_uuid_16(0x1810)
BLOOD_PRESSURE_MEASUREMENT = normalize_uuid_16(0x2A35)
BLOOD_PRESSURE_RECORD = normalize_uuid_16(0x2B36)
RECORD_ACCESS_CONTROL_POINT = normalize_uuid_16(0x2A52)
HEALTH_THERMOMETER_SERVICE = normalize_uuid_16(0x1809)
TEMPERATURE_MEASUREMENT = normalize_uuid_16(0x2A1C)
CURRENT_TIME_SERVICE = normalize_uuid_16(0x1805)
CURRENT_TIME = normalize_uuid_16(0x2A2B)
BATTERY_SERVICE = normalize_uuid_16(0x180F)
BATTERY_LEVEL = normalize_uuid_16(0x2A19)
DEVICE_INFORMATION_SERVICE = normalize_uuid_16(0x180A)
MANUFACTURER_NAME = normalize_uuid_16(0x2A29)
MODEL_NUMBER = normalize_uuid_16(0x2A24)
SERIAL_NUMBER = normalize_uuid_16(0x2A25)
FIRMWARE_REVISION = normalize_uuid_16(0x2A26)
