"""Recovering a stalled BlueZ adapter with Home Assistant's ``bluetooth-auto-recovery``.

That library holds the lessons of many thousands of Home Assistant installations: unblock
rfkill, power-cycle over the kernel's management socket, and, for an adapter that has gone
silent, reset the USB device. It needs the adapter's MAC address, read here from the kernel's
HCI device list (no D-Bus needed). Where it cannot (a Python built without Bluetooth sockets),
bluetoothd powers the adapter off and on over D-Bus, which also clears a discovery it believes
stuck. Anywhere else than Linux, or without the adapter, it answers False and the gateway
carries on.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys

log = logging.getLogger(__name__)

_HCI = re.compile(r"hci(\d+)")


async def recover_adapter(adapter: str) -> bool:
    """Power-cycle (and if need be USB-reset) ``adapter`` (``hci0``); whether it worked."""
    match = _HCI.fullmatch(adapter)
    if not sys.platform.startswith("linux") or match is None:
        log.warning("adapter recovery needs Linux and an hciN adapter, not %s", adapter)
        return False
    from bluetooth_adapters import get_adapters_from_hci  # noqa: PLC0415 - Linux only
    from bluetooth_auto_recovery import recover_adapter as recover  # noqa: PLC0415

    number = int(match.group(1))
    details = await asyncio.to_thread(get_adapters_from_hci)
    mac = details.get(number, {}).get("bdaddr")
    if mac and await recover(number, str(mac), gone_silent=True):
        return True
    log.warning("adapter %s: power-cycling it through bluetoothd instead", adapter)
    return await _power_cycle(adapter)


async def _power_cycle(adapter: str) -> bool:
    """``Powered`` off, then on, on bluetoothd's ``Adapter1`` (whether both were accepted)."""
    from dbus_fast import BusType, Message, MessageType, Variant  # noqa: PLC0415 - Linux only
    from dbus_fast.aio import MessageBus  # noqa: PLC0415

    try:
        bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
    except OSError as exc:
        log.warning("no system bus: %s", exc)
        return False
    try:
        for powered in (False, True):
            reply = await bus.call(
                Message(
                    destination="org.bluez",
                    path=f"/org/bluez/{adapter}",
                    interface="org.freedesktop.DBus.Properties",
                    member="Set",
                    signature="ssv",
                    body=["org.bluez.Adapter1", "Powered", Variant("b", powered)],
                )
            )
            if reply is None or reply.message_type == MessageType.ERROR:
                log.warning("bluetoothd refused Powered=%s: %s", powered, reply and reply.body)
                return False
        return True
    finally:
        bus.disconnect()
