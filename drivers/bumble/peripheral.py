"""A simulated wearable served by a bumble device: its GATT table, advertising, links, faults.

The device model (``drivers.sim``) decides what is measured and sent; here it travels over a
real host stack: ATT reads and writes, CCCD subscriptions, notifications and indications in
order, the MTU the central exchanged. Faults map to radio events: out of range is advertising
stopped and the link dropped; a link drop is a disconnection with the model's reason (0x08,
supervision timeout, unless it says otherwise); a refused connect is a connection the
peripheral ends at once (0x13).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Final

from bumble import att
from bumble.core import UUID, AdvertisingData
from bumble.gatt import (
    GATT_CLIENT_CHARACTERISTIC_CONFIGURATION_DESCRIPTOR,
    Characteristic,
    CharacteristicValue,
    Descriptor,
    Service,
)
from bumble.keys import MemoryKeyStore
from bumble.pairing import PairingConfig, PairingDelegate

from drivers.bumble.radio import IDENTITY, new_device
from drivers.gatt import uuids
from drivers.sim.peripheral import AttError

if TYPE_CHECKING:
    from bumble.device import Connection, Device
    from bumble.link import LocalLink

    from drivers.sim.peripheral import Receipt, SimPeripheral

log = logging.getLogger(__name__)

_PROPERTIES: Final = {
    "read": Characteristic.Properties.READ,
    "write": Characteristic.Properties.WRITE,
    "write-without-response": Characteristic.Properties.WRITE_WITHOUT_RESPONSE,
    "notify": Characteristic.Properties.NOTIFY,
    "indicate": Characteristic.Properties.INDICATE,
}
_REMOTE_USER_TERMINATED: Final = 0x13
_POLL_S: Final = 0.02  # how often range is looked at (advertising follows it)
_ADVERTISING_INTERVAL_MS: Final = 20.0
_SIG_BASE: Final = "-0000-1000-8000-00805f9b34fb"


# readable by anyone, as on real devices: what it is and its battery
_OPEN_SERVICES: Final = frozenset({uuids.DEVICE_INFORMATION_SERVICE, uuids.BATTERY_SERVICE})
_NEEDS: Final = {
    "none": Characteristic.Permissions(0),
    "just_works": Characteristic.READ_REQUIRES_ENCRYPTION
    | Characteristic.WRITE_REQUIRES_ENCRYPTION,
    "passkey": Characteristic.READ_REQUIRES_AUTHENTICATION
    | Characteristic.WRITE_REQUIRES_AUTHENTICATION,
}


_Outgoing = tuple["Characteristic[bytes]", bytes, "Receipt | None"]


class _ShowingPasskey(PairingDelegate):
    """The device's side of pairing: a display showing its passkey, or nothing (just works)."""

    def __init__(self, peripheral: SimPeripheral) -> None:
        showing = peripheral.security == "passkey"
        super().__init__(
            io_capability=self.DISPLAY_OUTPUT_ONLY if showing else self.NO_OUTPUT_NO_INPUT
        )
        self._passkey = peripheral.passkey

    async def generate_passkey(self) -> int:
        """The passkey on its display (fixed, so that a config can hold it)."""
        return self._passkey


class ServedPeripheral:
    """``peripheral``'s GATT table on a bumble device of ``link``, while :meth:`run` runs."""

    def __init__(self, link: LocalLink, peripheral: SimPeripheral) -> None:
        self.sim = peripheral
        self.device: Device = new_device(link, peripheral.address, peripheral.name)
        self.device.gatt_server.max_mtu = peripheral.max_mtu
        if not isinstance(peripheral.bonds, MemoryKeyStore):  # a device remembers its bonds
            peripheral.bonds = MemoryKeyStore()
        self.device.keystore = peripheral.bonds
        self.device.pairing_config_factory = lambda _connection: PairingConfig(
            sc=True,
            mitm=peripheral.security == "passkey",
            bonding=True,
            delegate=_ShowingPasskey(peripheral),
            identity_address_type=IDENTITY,
        )
        self._uuid_of: dict[int, str] = {}  # id(characteristic) -> the model's UUID
        for service in peripheral.services:
            guarded = service.uuid not in _OPEN_SERVICES
            characteristics = [
                self._characteristic(c.uuid, c.properties, guarded=guarded)
                for c in service.characteristics
            ]
            self.device.add_service(Service(UUID(service.uuid), characteristics))
        self._connection: Connection | None = None
        # what the model sent, in order (with its ground-truth receipt); a number: it dropped
        # the link after those, with that reason
        self._outgoing: asyncio.Queue[_Outgoing | int] = asyncio.Queue()
        self._indicating: set[str] = set()
        self._advertising = False
        self._stopping = False
        self._gone = asyncio.Event()  # the current connection ended

    def _characteristic(
        self, uuid: str, properties: tuple[str, ...], *, guarded: bool
    ) -> Characteristic[bytes]:
        """One characteristic; ``guarded``: its value and CCCD need the device's security."""
        flags = Characteristic.Properties(0)
        for name in properties:
            flags |= _PROPERTIES.get(name, Characteristic.Properties(0))
        value = CharacteristicValue(
            read=lambda _connection: self._read(uuid),
            write=lambda _connection, data: self._write(uuid, data),
        )
        needs = _NEEDS[self.sim.security] if guarded else Characteristic.Permissions(0)
        permissions = Characteristic.READABLE | Characteristic.WRITEABLE | needs
        characteristic: Characteristic[bytes] = Characteristic(
            UUID(uuid), flags, permissions, value
        )
        if needs and flags & (
            Characteristic.Properties.NOTIFY | Characteristic.Properties.INDICATE
        ):
            # its own CCCD, guarded too (bumble's default one is open to anyone)
            cccd = Descriptor(
                GATT_CLIENT_CHARACTERISTIC_CONFIGURATION_DESCRIPTOR,
                Descriptor.READABLE | Descriptor.WRITEABLE | needs,
                self.device.gatt_server.make_descriptor_value(characteristic),
            )
            characteristic.descriptors = [cccd]
        self._uuid_of[id(characteristic)] = uuid
        return characteristic

    def _read(self, uuid: str) -> bytes:
        try:
            return self.sim.read(uuid)
        except KeyError:
            raise att.ATT_Error(att.ATT_READ_NOT_PERMITTED_ERROR) from None

    async def _write(self, uuid: str, data: bytes) -> None:
        try:
            self.sim.write(uuid, bytes(data))
        except AttError as exc:
            raise att.ATT_Error(exc.code) from None
        except KeyError:
            raise att.ATT_Error(att.ATT_WRITE_NOT_PERMITTED_ERROR) from None
        if not self.sim.connected and self._connection is not None:
            # the device went away while handling it (a reset): the write is never answered
            await self._gone.wait()

    async def run(self) -> None:
        """Serve until :meth:`stop` or cancelled.

        Advertise while in range and free; send what the model sends, in order.
        """
        device = self.device
        await device.power_on()
        device.on(device.EVENT_CONNECTION, self._connected)
        device.on("characteristic_subscription", self._subscription)
        send = asyncio.create_task(self._send_loop(), name=f"bumble[{self.sim.address}].send")
        try:
            await self._advertise_loop()
        finally:
            send.cancel()
            # bounded: a host whose controller is gone never answers (a test's teardown hung)
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await device.stop_advertising()

    def stop(self) -> None:
        """End :meth:`run` at its next look at the radio.

        A flag, not only a cancel: with a cancel alone a teardown under load waited for ever
        about one run in fifteen (bumble's HCI commands wait with ``asyncio.wait_for``, which
        on Python 3.11 can lose a cancellation that arrives with the answer); with the flag,
        none in forty.
        """
        self._stopping = True

    async def _advertise_loop(self) -> None:
        device = self.device
        while not self._stopping:
            wanted = self.sim.in_range and self._connection is None
            if wanted and not self._advertising:
                device.advertising_data = self._advertising_data()
                await device.start_advertising(
                    advertising_interval_min=_ADVERTISING_INTERVAL_MS,
                    advertising_interval_max=_ADVERTISING_INTERVAL_MS,
                )
                self._advertising = True
            elif not wanted and self._advertising:
                await device.stop_advertising()
                self._advertising = False
            await asyncio.sleep(_POLL_S)

    def _advertising_data(self) -> bytes:
        """Its name and service UUIDs (16-bit where the SIG's base allows), as BlueZ reads them."""
        short: list[bytes] = []
        full: list[bytes] = []
        for text in self.sim.advertised_service_uuids():
            if text.endswith(_SIG_BASE) and text.startswith("0000"):
                short.append(bytes(UUID(text[4:8])))
            else:
                full.append(bytes(UUID(text)))
        fields = [(AdvertisingData.COMPLETE_LOCAL_NAME, self.sim.name.encode())]
        if short:
            kind = AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS
            fields.append((kind, b"".join(short)))
        if full:
            kind = AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS
            fields.append((kind, b"".join(full)))
        return bytes(AdvertisingData(fields))

    def _connected(self, connection: Connection) -> None:
        self._advertising = False  # a connection ends advertising (the controller's rule)
        if not self.sim.in_range or not self.sim.accept(self):
            # what a device that will not take the central looks like from the central
            asyncio.get_running_loop().create_task(connection.disconnect(_REMOTE_USER_TERMINATED))
            return
        self._connection = connection
        self._gone = asyncio.Event()
        self.sim.mtu = connection.att_mtu
        connection.on(connection.EVENT_PAIRING, self._paired)
        connection.on(connection.EVENT_DISCONNECTION, self._disconnected)
        connection.on(connection.EVENT_CONNECTION_ATT_MTU_UPDATE, self._mtu_changed)

    def _paired(self, _keys: object) -> None:
        self.sim.pairings += 1

    def _mtu_changed(self) -> None:
        if self._connection is not None:
            self.sim.mtu = self._connection.att_mtu

    def _disconnected(self, _reason: int) -> None:
        self._gone.set()
        self._connection = None
        self._indicating.clear()
        self.sim.release()

    def link_lost(self, reason: int) -> None:
        """The model dropped the link: after what it sent before, end it with ``reason``."""
        self._outgoing.put_nowait(reason)

    def _subscription(
        self,
        connection: Connection,
        characteristic: Characteristic[bytes],
        notify_enabled: bool,
        indicate_enabled: bool,
    ) -> None:
        uuid = self._uuid_of.get(id(characteristic))
        if uuid is None:  # bumble's own (Service Changed: BlueZ subscribes at each connect)
            return
        if indicate_enabled:
            self._indicating.add(uuid)
        else:
            self._indicating.discard(uuid)
        if notify_enabled or indicate_enabled:
            self.sim.subscribe(
                uuid,
                lambda data: self._outgoing.put_nowait(
                    (characteristic, bytes(data), self.sim.receipt)
                ),
            )
        else:
            self.sim.unsubscribe(uuid)

    @staticmethod
    async def _drained(connection: Connection) -> None:
        """Until the controller took every packet queued for ``connection`` (bounded).

        A disconnect overtakes data still in the host's queue: what the model sent before it
        dropped the link would be lost, though the model counted it sent.
        """
        queue = connection.data_packet_queue
        if queue is not None:
            async with asyncio.timeout(1.0):
                await queue.drain(connection.handle)

    async def _send_loop(self) -> None:
        """Notifications and indications in the order the model sent them.

        One the link took away before it went out (the central ended the link) is moved
        from the model's sent to lost in the air: the ground truth stays exact.
        """
        while True:
            item = await self._outgoing.get()
            connection = self._connection
            if isinstance(item, int):
                if connection is not None:
                    with contextlib.suppress(Exception):  # gone already: nothing to end
                        await self._drained(connection)
                        await connection.disconnect(item)
                continue
            characteristic, value, receipt = item
            try:
                if connection is None or self.device.connections.get(connection.handle) is None:
                    msg = "the link is gone"
                    raise ConnectionError(msg)
                if self._uuid_of[id(characteristic)] in self._indicating:
                    await self.device.indicate_subscriber(connection, characteristic, value)
                else:
                    await self.device.notify_subscriber(connection, characteristic, value)
            except Exception as exc:  # noqa: BLE001 - a link gone mid-send
                log.debug("%s: a notification was not sent: %s", self.sim.address, exc)
                if receipt is not None:
                    receipt.undelivered()
