"""``BaseBleakClient`` over a bumble central: connect, discovery, ATT reads and writes, CCCDs.

As BlueZ does for bleak: the MTU is exchanged at connect (bumble then holds the peripheral's
answer), services are discovered with their characteristics and descriptors, each
characteristic is addressed by its handle (two may share a UUID), the disconnected callback
fires on every disconnect, a dropped link fails GATT operations with ``BleakError``, and a
failed connect says it in BlueZ's words (``le-connection-abort-by-local``).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any, ClassVar, Final, TypeVar

from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient
from bleak.backends.device import BLEDevice
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakDeviceNotFoundError, BleakError
from bleak.uuids import normalize_uuid_str
from bumble import att, core
from bumble.device import Advertisement, Peer
from bumble.gatt import Characteristic
from bumble.hci import Address

from drivers.bumble.radio import peer_key

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from bleak.args import SizedBuffer
    from bleak.assigned_numbers import CharacteristicPropertyName
    from bleak.backends.client import NotifyCallback
    from bleak.backends.descriptor import BleakGATTDescriptor
    from bumble.device import Connection
    from bumble.gatt_client import CharacteristicProxy

    from drivers.bumble.radio import BumbleRadio

_T = TypeVar("_T")
PREFERRED_MTU: Final = 247  # what BlueZ asks for (the most a BLE 4.2+ data packet carries)
_PROPERTY_NAMES: Final[tuple[tuple[Characteristic.Properties, CharacteristicPropertyName], ...]] = (
    (Characteristic.Properties.READ, "read"),
    (Characteristic.Properties.WRITE_WITHOUT_RESPONSE, "write-without-response"),
    (Characteristic.Properties.WRITE, "write"),
    (Characteristic.Properties.NOTIFY, "notify"),
    (Characteristic.Properties.INDICATE, "indicate"),
)


class BumbleClient(BaseBleakClient):
    """Client backend; ``ble.backends.bumble`` binds ``radio``."""

    radio: ClassVar[BumbleRadio]

    def __init__(
        self,
        address_or_ble_device: BLEDevice | str,
        services: set[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(address_or_ble_device, **kwargs)
        details = (
            address_or_ble_device.details if isinstance(address_or_ble_device, BLEDevice) else None
        )
        # the address as advertised (its type included); from a bare string, a public one
        self._target = (
            details.address
            if isinstance(details, Advertisement)
            else Address(self.address, Address.PUBLIC_DEVICE_ADDRESS)
        )
        self._connection: Connection | None = None
        self._peer: Peer | None = None
        self._proxies: dict[int, CharacteristicProxy[bytes]] = {}
        self._last_reason = 0
        self._leaving = False  # we asked for the disconnect (not counted as a loss)

    @property
    def name(self) -> str:
        """The peripheral's address (its name is in the advertisement)."""
        return self.address

    @property
    def mtu_size(self) -> int:
        """The ATT MTU the two sides agreed on."""
        return self._connection.att_mtu if self._connection is not None else 23

    @property
    def is_connected(self) -> bool:
        """Whether the link is up."""
        return self._connection is not None

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        """Connect, exchange the MTU and discover every service, characteristic, descriptor."""
        await self.radio.power_on()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        not_found = BleakDeviceNotFoundError(
            self.address, f"Device with address {self.address} was not found."
        )
        try:
            # one LE connection is made at a time (a controller has one initiator); BlueZ
            # queues the others, and the wait counts against their timeout
            async with asyncio.timeout_at(deadline):
                await self.radio.connecting.acquire()
        except TimeoutError:
            raise not_found from None
        try:
            remaining_s = max(0.05, deadline - loop.time())
            connection = await self.radio.central.connect(self._target, timeout=remaining_s)
        except core.TimeoutError:
            raise not_found from None
        except core.BaseBumbleError as exc:  # (never "already pending": connects are queued)
            raise BleakError(f"{self.address}: le-connection-abort-by-local ({exc})") from None
        finally:
            self.radio.connecting.release()
        self._connection = connection
        connection.on(connection.EVENT_DISCONNECTION, self._disconnected)
        peer = self._peer = Peer(connection)
        if self.radio.central.connections.get(connection.handle) is not connection:
            # it ended before this task resumed (a peripheral that drops a new link at once):
            # the event (and its reason) came before there was a listener for it
            self._closed()
        try:
            # a disconnection aborts the exchange at once (bumble would wait for answers); one
            # that came already is not waited for
            if self._connection is None:
                raise core.InvalidStateError("ended")
            collection = await connection.cancel_on_disconnection(self._set_up(connection, peer))
        except (core.BaseBumbleError, asyncio.CancelledError) as exc:
            ended = self._connection is None
            if not ended:  # a half-made connection must not keep holding the peripheral
                self._closed()
                asyncio.get_running_loop().create_task(_quietly(connection.disconnect()))
            if isinstance(exc, asyncio.CancelledError) and _cancelled_by_caller():
                raise
            if ended:
                raise BleakError(self._ended_while_connecting()) from None
            raise BleakError(f"{self.address}: discovery failed: {exc}") from None
        self.services = collection

    async def _set_up(self, connection: Connection, peer: Peer) -> BleakGATTServiceCollection:
        await self._encrypt_if_bonded(connection)
        return await self._discover(peer)

    async def _encrypt_if_bonded(self, connection: Connection) -> None:
        """As BlueZ does with a bonded device: encrypt the link with the stored keys at once.

        A device that lost the bond refuses (PIN or key missing): the stale keys are dropped,
        so that the next connection pairs afresh if the gateway is configured to.
        """
        keystore = self.radio.central.keystore
        if keystore is None or await keystore.get(str(connection.peer_address)) is None:
            return
        try:
            await connection.encrypt()
        except core.BaseBumbleError as exc:
            await keystore.delete(str(connection.peer_address))
            msg = f"{self.address}: the device refused this gateway's bond ({exc}); forgotten"
            raise core.InvalidStateError(msg) from None

    async def _discover(self, peer: Peer) -> BleakGATTServiceCollection:
        """The MTU exchange, then every service, characteristic and descriptor."""
        await peer.request_mtu(PREFERRED_MTU)
        await peer.discover_services()
        collection = BleakGATTServiceCollection()
        for service in peer.services:
            await service.discover_characteristics()
            bleak_service = BleakGATTService(service, service.handle, _uuid(service.uuid))
            collection.add_service(bleak_service)
            for proxy in service.characteristics:
                await proxy.discover_descriptors()
                self._proxies[proxy.handle] = proxy
                collection.add_characteristic(
                    BleakGATTCharacteristic(
                        proxy,
                        proxy.handle,
                        _uuid(proxy.uuid),
                        [name for flag, name in _PROPERTY_NAMES if flag & proxy.properties],
                        lambda: self.mtu_size - 3,
                        bleak_service,
                    )
                )
        return collection

    def _ended_while_connecting(self) -> str:
        """As BlueZ says a connection the peripheral did not keep."""
        reason = self._last_reason
        return f"{self.address}: le-connection-abort-by-local (peripheral ended it: 0x{reason:02x})"

    async def disconnect(self) -> None:
        """Disconnect on purpose; the callback fires as with BlueZ."""
        connection = self._connection
        if connection is None:
            return
        self._leaving = True
        try:
            await connection.disconnect()
        except core.BaseBumbleError:
            self._closed()

    async def pair(self, *args: Any, passkey: int | None = None, **kwargs: Any) -> None:
        """Pair and bond (LE Secure Connections): "just works", or entering ``passkey``.

        Already encrypted (bonded before, re-encrypted at connect): nothing to do.
        """
        connection = self._connection
        if connection is None:
            msg = "Not connected"
            raise BleakError(msg)
        if connection.is_encrypted:
            return
        self.radio.passkeys[peer_key(connection.peer_address)] = passkey
        try:
            await connection.cancel_on_disconnection(connection.pair())
        except (core.BaseBumbleError, asyncio.CancelledError) as exc:
            if isinstance(exc, asyncio.CancelledError) and _cancelled_by_caller():
                raise
            raise BleakError(f"{self.address}: pairing failed: {exc}") from None

    async def unpair(self) -> None:
        """Forget the device's keys and disconnect, as BlueZ's RemoveDevice does."""
        keystore = self.radio.central.keystore
        if keystore is not None:
            with contextlib.suppress(KeyError):
                await keystore.delete(str(self._target))
        await self.disconnect()

    async def read_gatt_char(
        self,
        characteristic: BleakGATTCharacteristic,
        *,
        use_cached: bool = False,
        **kwargs: Any,
    ) -> bytearray:
        """Read a characteristic's value by its handle."""
        return bytearray(await _gatt(self._proxy(characteristic).read_value()))

    async def read_gatt_descriptor(
        self,
        descriptor: BleakGATTDescriptor,
        *,
        use_cached: bool = False,
        **kwargs: Any,
    ) -> bytearray:
        """Descriptors are not read by the gateway."""
        raise BleakError(f"descriptor {descriptor.uuid} is not readable here")

    async def write_gatt_char(
        self,
        characteristic: BleakGATTCharacteristic,
        data: SizedBuffer,
        response: bool,
    ) -> None:
        """Write a characteristic by its handle, with or without response as asked."""
        await _gatt(self._proxy(characteristic).write_value(bytes(data), with_response=response))

    async def write_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, data: SizedBuffer
    ) -> None:
        """Descriptors are written through ``start_notify``."""
        raise BleakError(f"descriptor {descriptor.uuid} is not writable here")

    async def start_notify(
        self,
        characteristic: BleakGATTCharacteristic,
        callback: NotifyCallback,
        **kwargs: Any,
    ) -> None:
        """Write the CCCD: notifications where the characteristic notifies, else indications."""
        proxy = self._proxy(characteristic)
        prefer_notify = bool(proxy.properties & Characteristic.Properties.NOTIFY)
        await _gatt(
            self._require_peer().subscribe(
                proxy, lambda value: callback(bytearray(value)), prefer_notify=prefer_notify
            )
        )

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        """Clear the CCCD."""
        await _gatt(self._require_peer().unsubscribe(self._proxy(characteristic)))

    def _proxy(self, characteristic: BleakGATTCharacteristic) -> CharacteristicProxy[bytes]:
        self._require_peer()
        proxy = self._proxies.get(characteristic.handle)
        if proxy is None:
            raise BleakError(f"characteristic {characteristic.uuid} is not on this device")
        return proxy

    def _require_peer(self) -> Peer:
        if self._peer is None:
            msg = "Not connected"
            raise BleakError(msg)
        return self._peer

    def _disconnected(self, reason: int) -> None:
        if not self._leaving:
            self.radio.disconnections[reason] += 1
        self._last_reason = reason
        self._closed()

    def _closed(self) -> None:
        was_connected = self._connection is not None
        self._connection = None
        self._peer = None
        self._proxies = {}
        self.services = None
        if was_connected and self._disconnected_callback is not None:
            self._disconnected_callback()


async def _gatt(operation: Awaitable[_T]) -> _T:
    """A GATT operation, failing as BlueZ's do: ``BleakError``, also when the link drops.

    bumble cancels a request pending when the link goes, so its ``CancelledError`` reaches
    the caller, whose task nobody cancelled: let through, it ended a device's link task
    for good, without a word (the soak over bumble lost a watch that way).
    """
    try:
        return await operation
    except core.BaseBumbleError as exc:
        raise _failed(exc) from None
    except asyncio.CancelledError:
        if _cancelled_by_caller():
            raise  # that one must go through
        raise BleakError("Not connected (the link dropped during a GATT operation)") from None


def _cancelled_by_caller() -> bool:
    """Whether the running task was cancelled (not a bumble future cancelled by a disconnect)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _failed(exc: core.BaseBumbleError) -> BleakError:
    """A failed GATT operation as BlueZ words it (an ATT error by its code)."""
    if isinstance(exc, att.ATT_Error):
        name = exc.error_name.replace("_", " ").title()
        return BleakError(f"Operation failed with ATT error: 0x{exc.error_code:02x} ({name})")
    return BleakError(f"Operation failed with {exc}")


def _uuid(uuid: core.UUID) -> str:
    """A bumble UUID as bleak writes it: 128-bit, lower case."""
    return normalize_uuid_str(uuid.to_hex_str("-"))


async def _quietly(disconnecting: Awaitable[None]) -> None:
    """Await a disconnect whose failure changes nothing (the link is going anyway)."""
    with contextlib.suppress(core.BaseBumbleError):
        await disconnecting
