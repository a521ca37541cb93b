"""One in-process virtual radio (bumble's ``LocalLink``): a controller and host per device.

The central (the gateway's adapter) is one bumble device; each peripheral is another. Several
links scan at once through one central scan, whose advertisements reach every scanner.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import TYPE_CHECKING

from bumble.controller import Controller
from bumble.device import Device
from bumble.hci import Address
from bumble.host import Host
from bumble.link import LocalLink
from bumble.transport.common import AsyncPipeSink

if TYPE_CHECKING:
    from collections.abc import Callable

    from bumble.device import Advertisement

CENTRAL_ADDRESS = "F0:F0:F0:F0:F0:F0"


def new_device(link: LocalLink, address: str, name: str) -> Device:
    """A bumble device with its own controller on ``link``, at a public ``address``."""
    controller = Controller(name, link=link, public_address=address)
    device = Device(address=Address(address), host=Host(controller, AsyncPipeSink(controller)))
    device.name = name
    return device


class BumbleRadio:
    """The link, the gateway's central device on it, and a shared scan."""

    def __init__(self) -> None:
        self.link = LocalLink()  # type: ignore[no-untyped-call]
        self.central = new_device(self.link, CENTRAL_ADDRESS, "wgw")
        self._listeners: list[Callable[[Advertisement], None]] = []
        self.disconnections: Counter[int] = Counter()  # HCI reason -> links the central lost
        self._lock = asyncio.Lock()
        self._powered = False

    async def power_on(self) -> None:
        """Start the central's host (once)."""
        async with self._lock:
            if not self._powered:
                await self.central.power_on()
                self.central.on(self.central.EVENT_ADVERTISEMENT, self._advertisement)
                self._powered = True

    async def listen(self, listener: Callable[[Advertisement], None]) -> None:
        """Receive advertisements until :meth:`unlisten`; the first listener starts the scan."""
        await self.power_on()
        async with self._lock:
            self._listeners.append(listener)
            if len(self._listeners) == 1:
                await self.central.start_scanning(filter_duplicates=False)

    async def unlisten(self, listener: Callable[[Advertisement], None]) -> None:
        """Stop receiving; the last listener stops the scan."""
        async with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)
                if not self._listeners:
                    await self.central.stop_scanning()

    def _advertisement(self, advertisement: Advertisement) -> None:
        for listener in list(self._listeners):
            listener(advertisement)
