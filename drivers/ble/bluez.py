"""Recovering a stalled BlueZ adapter with Home Assistant's ``bluetooth-auto-recovery``.

That library holds the lessons of many thousands of Home Assistant installations: unblock
rfkill, power-cycle over the kernel's management socket, and, for an adapter that has gone
silent, reset the USB device. It needs the adapter's MAC address, read here from the kernel's
HCI device list (no D-Bus needed). Anywhere else than Linux, or without the adapter, it answers
False and the gateway carries on.
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
    if not mac:
        log.warning("adapter %s is not in the kernel's HCI device list", adapter)
        return False
    return await recover(number, str(mac), gone_silent=True)
