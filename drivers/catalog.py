"""Every characteristic the gateway decodes, by name and UUID, with its decoder as JSON.

``wgw decode`` and the device link both look decoders up here, so a capture decodes offline
exactly as it did live.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from bleak.uuids import normalize_uuid_16, normalize_uuid_str

from drivers.errors import DecodeError
from drivers.gatt import infinitime
from drivers.gatt.battery import decode_battery_level
from drivers.gatt.blood_pressure import decode_blood_pressure_measurement
from drivers.gatt.device_information import STRING_CHARACTERISTICS, decode_device_information_string
from drivers.gatt.heart_rate import decode_heart_rate_measurement
from drivers.gatt.plx import decode_plx_continuous, decode_plx_spot_check
from drivers.gatt.temperature import decode_temperature_measurement
from drivers.movesense import gsp
from drivers.movesense.resources import decode_data, parse_path
from drivers.polar import pmd, pmd_settings, ppi

JsonDecoder = Callable[[bytes], dict[str, object]]


@dataclass(frozen=True, slots=True)
class Characteristic:
    """A decodable characteristic."""

    name: str
    uuid: str
    decode_json: JsonDecoder


def _pmd_json(channels: int | None, resolution_bits: int | None) -> JsonDecoder:
    def decode(data: bytes) -> dict[str, object]:
        if data and data[0] == ppi.PPI_MEASUREMENT:  # intervals, not samples
            timestamp_ns, samples = ppi.decode_ppi_frame(data)
            return {
                "measurement": "ppi",
                "timestamp_ns": timestamp_ns,
                "intervals": [s.to_json() for s in samples],
            }
        return pmd.decode_pmd_data(
            data, channels=channels, resolution_bits=resolution_bits
        ).to_json()

    return decode


def _movesense_json(path: str | None) -> JsonDecoder:
    """A GSP notification: a command's result, or (given its resource's path) its data."""

    def decode(data: bytes) -> dict[str, object]:
        packet = gsp.decode_packet(data)
        if packet.kind == gsp.RESULT:
            return {"reference": packet.reference, "status": packet.status()}
        if path is None:
            raise DecodeError(gsp.PROFILE, "data needs its resource: --path /Meas/...")
        try:
            resource = parse_path(path)
        except ValueError as exc:
            raise DecodeError(gsp.PROFILE, str(exc)) from None
        return {"reference": packet.reference, **decode_data(resource, packet.body).to_json()}

    return decode


def _string_json(data: bytes) -> dict[str, object]:
    return {"value": decode_device_information_string(data)}


_ENTRIES: Final = [
    Characteristic(
        "heart_rate_measurement",
        normalize_uuid_16(0x2A37),
        lambda b: decode_heart_rate_measurement(b).to_json(),
    ),
    Characteristic(
        "plx_spot_check", normalize_uuid_16(0x2A5E), lambda b: decode_plx_spot_check(b).to_json()
    ),
    Characteristic(
        "plx_continuous", normalize_uuid_16(0x2A5F), lambda b: decode_plx_continuous(b).to_json()
    ),
    Characteristic(
        "blood_pressure_measurement",
        normalize_uuid_16(0x2A35),
        lambda b: decode_blood_pressure_measurement(b).to_json(),
    ),
    Characteristic(
        "temperature_measurement",
        normalize_uuid_16(0x2A1C),
        lambda b: decode_temperature_measurement(b).to_json(),
    ),
    Characteristic(
        "battery_level",
        normalize_uuid_16(0x2A19),
        lambda b: {"battery_pct": decode_battery_level(b)},
    ),
    Characteristic("pmd_data", pmd.PMD_DATA, _pmd_json(None, None)),
    Characteristic(
        pmd.CONTROL_POINT_PROFILE, pmd.PMD_CONTROL_POINT, pmd_settings.control_point_json
    ),
    Characteristic(gsp.PROFILE, gsp.DATA_CHARACTERISTIC, _movesense_json(None)),
    Characteristic(
        infinitime.STEP_PROFILE,
        infinitime.STEP_COUNT,
        lambda b: {"steps": infinitime.decode_step_count(b)},
    ),
    Characteristic(
        infinitime.MOTION_PROFILE,
        infinitime.MOTION_VALUES,
        lambda b: infinitime.decode_motion_values(b).to_json(),
    ),
    *(
        Characteristic(f"{key}_string", normalize_uuid_16(short), _string_json)
        for short, key in STRING_CHARACTERISTICS.items()
    ),
]
CHARACTERISTICS: Final = {c.name: c for c in _ENTRIES}
_BY_UUID: Final = {c.uuid: c for c in _ENTRIES}


def lookup(key: str) -> Characteristic | None:
    """Find a characteristic by name, 16-bit UUID (``2a37``, ``0x2A37``) or full UUID."""
    key = key.strip().lower()
    if key in CHARACTERISTICS:
        return CHARACTERISTICS[key]
    short = key.removeprefix("0x")
    try:
        uuid = normalize_uuid_16(int(short, 16)) if len(short) == 4 else normalize_uuid_str(key)
    except ValueError:
        return None
    return _BY_UUID.get(uuid)


def decode_json(
    characteristic: Characteristic,
    data: bytes,
    *,
    channels: int | None = None,
    resolution_bits: int | None = None,
    path: str | None = None,
) -> dict[str, object]:
    """Decode ``data`` as ``characteristic``.

    PMD frames may need their stream's settings, Movesense data its resource's path (a split
    notification: the DATA packet, then the bodies of its parts).

    Raises:
        DecodeError: The payload is malformed.
    """
    if characteristic.uuid == pmd.PMD_DATA:
        return _pmd_json(channels, resolution_bits)(data)
    if characteristic.uuid == gsp.DATA_CHARACTERISTIC:
        return _movesense_json(path)(data)
    return characteristic.decode_json(data)


__all__ = ["CHARACTERISTICS", "Characteristic", "DecodeError", "decode_json", "lookup"]
