"""The ATT MTU a link agreed, and which PMD streams cannot be carried in it."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from drivers.polar import pmd

if TYPE_CHECKING:
    from collections.abc import Iterable

    from bleak import BleakClient

log = logging.getLogger(__name__)


async def agreed_mtu(client: BleakClient) -> int | None:
    """The link's ATT MTU, or None when the stack cannot tell.

    bleak's BlueZ backend answers 23 until it is asked to acquire the MTU (its documented
    way: ``_acquire_mtu`` after discovery); that needs a characteristic BlueZ can acquire.
    """
    backend = client._backend  # bleak documents this call for BlueZ
    acquire = getattr(backend, "_acquire_mtu", None)
    if acquire is not None and getattr(backend, "_mtu_size", 0) is None:
        try:
            await acquire()
        except Exception as exc:  # noqa: BLE001 - an unknown MTU is not a reason to fail the link
            log.info("%s: the ATT MTU could not be acquired: %s", client.address, exc)
            return None
    return client.mtu_size


def unfit_streams(streams: Iterable[pmd.StreamSettings], mtu: int | None) -> dict[str, str]:
    """Each stream whose one-sample frame is longer than a notification at ``mtu``, and why."""
    if mtu is None:
        return {}
    room = mtu - 3
    unfit = {}
    for settings in streams:
        needed = pmd.smallest_frame_bytes(settings)
        if needed > room:
            unfit[settings.measurement] = (
                f"ATT MTU {mtu} leaves {room} bytes a notification; one {settings.measurement}"
                f" frame of {settings.channels} channel(s) at {settings.resolution_bits} bits"
                f" needs {needed}"
            )
    return unfit
