"""Scanning: what is in range, which profiles it advertises, and whether config selects it."""

from __future__ import annotations

import asyncio
import fnmatch
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from bleak import BleakScanner

from drivers.gatt import infinitime, uuids
from drivers.movesense import gsp
from drivers.polar import pmd

if TYPE_CHECKING:
    from collections.abc import Iterable

    from bleak.backends.device import BLEDevice
    from bleak.backends.scanner import AdvertisementData

    from drivers.ble.backends import BleBackends

PROFILES: Final = {
    uuids.HEART_RATE_SERVICE: "heart_rate",
    uuids.PULSE_OXIMETER_SERVICE: "pulse_oximeter",
    uuids.BLOOD_PRESSURE_SERVICE: "blood_pressure",
    uuids.HEALTH_THERMOMETER_SERVICE: "health_thermometer",
    uuids.BATTERY_SERVICE: "battery",
    uuids.DEVICE_INFORMATION_SERVICE: "device_information",
    pmd.PMD_SERVICE: "polar_pmd",
    infinitime.MOTION_SERVICE: "infinitime_motion",
    gsp.SERVICE: "movesense_gsp",
}


@dataclass(frozen=True, slots=True)
class AllowList:
    """Devices selected besides the configured ones: by name pattern, address or service."""

    configured: frozenset[str] = frozenset()
    names: tuple[str, ...] = ()
    addresses: frozenset[str] = frozenset()
    service_uuids: frozenset[str] = frozenset()

    def selects(self, address: str, name: str | None, service_uuids: Iterable[str]) -> str | None:
        """Why the device is selected (``configured`` or ``allow-list``), or ``None``."""
        address = address.upper()
        if address in self.configured:
            return "configured"
        if address in self.addresses:
            return "allow-list"
        if name and any(fnmatch.fnmatchcase(name, pattern) for pattern in self.names):
            return "allow-list"
        if self.service_uuids & {u.lower() for u in service_uuids}:
            return "allow-list"
        return None


@dataclass(frozen=True, slots=True)
class Sighting:
    """One device seen while scanning (the last advertisement wins)."""

    address: str
    name: str | None
    rssi_dbm: int
    profiles: tuple[str, ...]
    selected: str | None


async def scan(backends: BleBackends, duration_s: float, allow: AllowList) -> list[Sighting]:
    """Listen to advertisements for ``duration_s``; strongest signal first."""
    seen: dict[str, Sighting] = {}

    def on_advert(device: BLEDevice, adv: AdvertisementData) -> None:
        profiles = tuple(PROFILES[u] for u in adv.service_uuids if u in PROFILES)
        name = adv.local_name or device.name
        seen[device.address.upper()] = Sighting(
            device.address.upper(),
            name,
            adv.rssi,
            profiles,
            allow.selects(device.address, name, adv.service_uuids),
        )

    async with BleakScanner(on_advert, backend=backends.scanner):
        await asyncio.sleep(duration_s)
    return sorted(seen.values(), key=lambda s: -s.rssi_dbm)
