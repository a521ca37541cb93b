"""One in-process virtual radio (bumble's ``LocalLink``): a controller and host per device.

The central (the gateway's adapter) is one bumble device; each peripheral is another. Several
links scan at once through one central scan, whose advertisements reach every scanner.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import TYPE_CHECKING

from bumble import hci
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


class _Controller(Controller):
    """bumble's controller, with LE Create Connection Cancel as the specification has it.

    bumble's answers success and does nothing else: the pending connection stays, and its
    host waits for ever for the LE Connection Complete event a real controller sends with
    status 0x02 (Vol 4, Part E, 7.8.13). A connect that timed out (the device stopped
    advertising meanwhile) hung the link for good.
    """

    def on_hci_le_create_connection_cancel_command(
        self, _command: hci.HCI_LE_Create_Connection_Cancel_Command
    ) -> hci.HCI_StatusReturnParameters:
        pending = self.pending_le_connection
        if pending is None:
            return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.COMMAND_DISALLOWED_ERROR)
        self.pending_le_connection = None
        ended = hci.HCI_LE_Connection_Complete_Event(
            status=hci.HCI_ErrorCode.UNKNOWN_CONNECTION_IDENTIFIER_ERROR,
            connection_handle=0,
            role=hci.Role.CENTRAL,
            peer_address_type=pending.peer_address_type,
            peer_address=pending.peer_address,
            connection_interval=0,
            peripheral_latency=0,
            supervision_timeout=0,
            central_clock_accuracy=0,
        )
        # after this command's Command Complete, as the specification orders them
        asyncio.get_running_loop().call_soon(self.send_hci_packet, ended)
        return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.SUCCESS)


def new_device(link: LocalLink, address: str, name: str) -> Device:
    """A bumble device with its own controller on ``link``, at a public ``address``."""
    controller = _Controller(name, link=link, public_address=address)
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
