"""One in-process virtual radio (bumble's ``LocalLink``): a controller and host per device.

The central (the gateway's adapter) is one bumble device; each peripheral is another. Several
links scan at once through one central scan, whose advertisements reach every scanner.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections import Counter
from typing import TYPE_CHECKING, Any, Final

from bumble import core, hci
from bumble.controller import Controller
from bumble.device import Device
from bumble.hci import Address
from bumble.host import Host
from bumble.keys import JsonKeyStore, MemoryKeyStore
from bumble.pairing import PairingConfig, PairingDelegate
from bumble.transport.common import AsyncPipeSink

from drivers.bumble.connection_events import AddressedLink, EventLink

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from bumble.device import Advertisement, Connection
    from bumble.link import LocalLink

log = logging.getLogger(__name__)

CENTRAL_ADDRESS = "F0:F0:F0:F0:F0:F0"


class CancellableController(Controller):
    """bumble's controller, with LE Create Connection Cancel as the specification has it.

    bumble's answers success and does nothing else: the pending connection stays, and its
    host waits for ever for the LE Connection Complete event a real controller sends with
    status 0x02 (Vol 4, Part E, 7.8.13). A connect that timed out (the device stopped
    advertising meanwhile) hung the link for good.
    """

    def on_hci_le_create_connection_cancel_command(
        self, _command: hci.HCI_LE_Create_Connection_Cancel_Command
    ) -> hci.HCI_StatusReturnParameters:
        """End the pending connect, and say so to the host with status 0x02."""
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
    return _device_of(CancellableController(name, link=link, public_address=address), address, name)


def _device_of(controller: Controller, address: str, name: str) -> Device:
    device = Device(address=Address(address), host=Host(controller, AsyncPipeSink(controller)))
    device.name = name
    return device


class _BondFile(JsonKeyStore):
    """bumble's JSON key store, kept as the secret it holds and readable after any crash.

    Written 0600, synced, then renamed over the old one; a file that does not parse (edited
    by hand, a disk fault) is set aside as ``.unreadable`` and the gateway pairs afresh.
    """

    async def load(self) -> tuple[dict[str, dict[str, dict[str, Any]]], dict[str, dict[str, Any]]]:
        try:
            return await super().load()
        except ValueError as exc:
            aside = self.filename.with_name(self.filename.name + ".unreadable")
            log.error("bond store %s unreadable (%s): set aside as %s", self.filename, exc, aside)
            self.filename.replace(aside)
            return await super().load()

    async def save(self, db: dict[str, dict[str, dict[str, Any]]]) -> None:
        self.filename.parent.mkdir(parents=True, exist_ok=True)
        temp = self.filename.with_name(self.filename.name + ".tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(db, out, sort_keys=True, indent=4)
            out.flush()
            os.fsync(out.fileno())
        temp.replace(self.filename)


class _EnteringPasskey(PairingDelegate):
    """The gateway's side of pairing: no display; a keyboard when a passkey is configured."""

    def __init__(self, passkey: int | None) -> None:
        io = self.KEYBOARD_INPUT_ONLY if passkey is not None else self.NO_OUTPUT_NO_INPUT
        super().__init__(io_capability=io)
        self._passkey = passkey

    async def get_number(self) -> int | None:
        """The passkey the device shows (None refuses: none was configured)."""
        return self._passkey


# Each side gives the address it connects with (its random static one) as its identity: the
# other side stores the bond under it and finds it again on the next connection.
IDENTITY: Final = PairingConfig.AddressType.RANDOM


def peer_key(address: Address) -> str:
    """An address as the passkeys are keyed: upper case, without bumble's type suffix."""
    return str(address).split("/")[0].upper()


class BumbleRadio:
    """The link, the gateway's central device on it, a shared scan, and the central's bonds.

    ``bond_file``: where the central keeps the keys of the devices it bonded with (JSON), so
    that a restarted gateway re-encrypts instead of pairing again; None: kept in memory.
    ``connection_interval_s``: data goes only at connection events that far apart, several
    packets an event (None: each packet as soon as it is sent).
    """

    def __init__(
        self, bond_file: Path | None = None, connection_interval_s: float | None = None
    ) -> None:
        self.link: LocalLink = (
            EventLink(connection_interval_s)
            if connection_interval_s is not None
            else AddressedLink()  # type: ignore[no-untyped-call]
        )
        self._controller = CancellableController(
            "wgw", link=self.link, public_address=CENTRAL_ADDRESS
        )
        self.central = _device_of(self._controller, CENTRAL_ADDRESS, "wgw")
        self.adapter_stalled = False
        self.adapter_resets = 0
        self.on_stall: list[Callable[[], None]] = []  # each served device's link drop
        if bond_file is not None:
            self.central.keystore = _BondFile("wgw", str(bond_file))
        else:
            self.central.keystore = MemoryKeyStore()
        self.passkeys: dict[str, int | None] = {}  # peer -> the passkey to enter, if any
        self.central.pairing_config_factory = self._pairing_config
        self._listeners: list[Callable[[Advertisement], None]] = []
        self.disconnections: Counter[int] = Counter()  # HCI reason -> links the central lost
        self._lock = asyncio.Lock()
        self.connecting = asyncio.Lock()  # held by the one connection being made
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

    async def stall_adapter(self) -> None:
        """Fault: the adapter wedges as BlueZ controllers do, until :meth:`reset_adapter`.

        Every link drops; then its controller hears nothing of the radio: scans report no
        advertisement, connects time out.
        """
        for drop in self.on_stall:  # the devices see the links time out, after what they sent
            drop()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2.0):
                while self.central.connections:  # noqa: ASYNC110 - bumble has no event for "none left"
                    await asyncio.sleep(0.01)
        for connection in list(self.central.connections.values()):  # any the devices kept
            with contextlib.suppress(core.BaseBumbleError, TimeoutError):
                async with asyncio.timeout(1.0):
                    await connection.disconnect()
        self.link.remove_controller(self._controller)
        self.adapter_stalled = True

    async def reset_adapter(self, adapter: str) -> bool:
        """Power-cycle the adapter (``backends``' recovery): it hears the radio again; True."""
        if self.adapter_stalled:
            self.link.add_controller(self._controller)
            self.adapter_stalled = False
        self.adapter_resets += 1
        return True

    def _pairing_config(self, connection: Connection) -> PairingConfig:
        passkey = self.passkeys.get(peer_key(connection.peer_address))
        return PairingConfig(
            sc=True,
            mitm=passkey is not None,
            bonding=True,
            delegate=_EnteringPasskey(passkey),
            identity_address_type=IDENTITY,
        )

    def _advertisement(self, advertisement: Advertisement) -> None:
        for listener in list(self._listeners):
            listener(advertisement)
