"""Characteristics found on a discovered GATT table, where one UUID may be in several services.

bleak refuses to look up, read or notify by a UUID that two services hold (a device with a
second battery, two record access control points), so the link addresses every
characteristic by the object discovery gave it, that is by its handle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bleak.uuids import normalize_uuid_str

if TYPE_CHECKING:
    from bleak.backends.characteristic import BleakGATTCharacteristic
    from bleak.backends.service import BleakGATTServiceCollection


def find(
    services: BleakGATTServiceCollection,
    uuid: str,
    *,
    beside: BleakGATTCharacteristic | None = None,
) -> BleakGATTCharacteristic | None:
    """The characteristic ``uuid``: in ``beside``'s service if given, else the first by handle."""
    uuid = normalize_uuid_str(uuid)
    matches = [
        c
        for c in services.characteristics.values()
        if c.uuid == uuid and (beside is None or c.service_handle == beside.service_handle)
    ]
    return min(matches, key=lambda c: c.handle, default=None)
