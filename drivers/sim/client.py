"""``BaseBleakClient`` over a :class:`SimWorld`, matching BlueZ where the gateway depends on it.

Like BlueZ: the disconnected callback fires on every disconnect, explicit ones included;
``services`` is ``None`` while disconnected; an absent device raises
``BleakDeviceNotFoundError``; GATT operations on a dropped link raise ``BleakError``.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, ClassVar

from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient
from bleak.backends.device import BLEDevice
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakDeviceNotFoundError, BleakError

from drivers.sim.peripheral import AttError, SimPeripheral

if TYPE_CHECKING:
    from bleak.args import SizedBuffer
    from bleak.backends.client import NotifyCallback
    from bleak.backends.descriptor import BleakGATTDescriptor

    from drivers.sim.world import SimWorld

_MTU = 247


class SimClient(BaseBleakClient):
    """Client backend; :func:`drivers.sim.backend.make_backends` binds ``world``."""

    world: ClassVar[SimWorld]

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
        self._hint = details if isinstance(details, SimPeripheral) else None
        self._peripheral: SimPeripheral | None = None

    @property
    def name(self) -> str:
        """The peripheral's advertised name."""
        return self._peripheral.name if self._peripheral else self.address

    @property
    def mtu_size(self) -> int:
        """The negotiated ATT MTU: what BlueZ asks for, or the device's limit if lower."""
        return self._peripheral.mtu if self._peripheral else _MTU

    @property
    def is_connected(self) -> bool:
        """Whether the link is up."""
        return self._peripheral is not None

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        """Connect, after the peripheral's connect delay, and discover its services."""
        if self.world.adapter_stalled:
            # What a wedged BlueZ controller answers to a connection request.
            msg = f"{self.address}: org.bluez.Error.Failed: le-connection-abort-by-local"
            raise BleakError(msg)
        peripheral = self.world.peripheral(self.address)
        if peripheral is None or (self._hint is not None and peripheral is not self._hint):
            raise BleakDeviceNotFoundError(
                self.address, f"Device with address {self.address} was not found."
            )
        if peripheral.connected:
            msg = f"{self.address}: already connected to another central"
            raise BleakError(msg)
        async with asyncio.timeout(self._timeout):
            await asyncio.sleep(peripheral.connect_delay_s)
        if not peripheral.in_range:
            raise BleakDeviceNotFoundError(
                self.address, f"Device with address {self.address} was not found."
            )
        if not peripheral.accept(self):
            # What BlueZ reports when the peripheral does not answer the connection request.
            msg = f"{self.address}: le-connection-abort-by-local"
            raise BleakError(msg)
        self._peripheral = peripheral
        peripheral.mtu = min(_MTU, peripheral.max_mtu)
        self.services = _service_collection(peripheral)

    async def disconnect(self) -> None:
        """Disconnect on purpose; the callback fires as with BlueZ."""
        peripheral = self._peripheral
        if peripheral is None:
            return
        peripheral.release()
        self._closed()

    def link_lost(self, reason: int) -> None:
        """The peripheral dropped the link (BlueZ tells bleak no reason)."""
        self._closed()

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        """Simulated devices need no pairing."""

    async def unpair(self) -> None:
        """Simulated devices need no pairing."""

    async def read_gatt_char(
        self,
        characteristic: BleakGATTCharacteristic,
        *,
        use_cached: bool = False,
        **kwargs: Any,
    ) -> bytearray:
        """Read a characteristic's value."""
        return bytearray(self._require().read(characteristic.uuid))

    async def read_gatt_descriptor(
        self,
        descriptor: BleakGATTDescriptor,
        *,
        use_cached: bool = False,
        **kwargs: Any,
    ) -> bytearray:
        """Simulated tables carry no readable descriptors."""
        raise BleakError(f"descriptor {descriptor.uuid} is not readable")

    async def write_gatt_char(
        self,
        characteristic: BleakGATTCharacteristic,
        data: SizedBuffer,
        response: bool,
    ) -> None:
        """Write a characteristic; an ATT error comes back as BlueZ words it."""
        try:
            self._require().write(characteristic.uuid, bytes(data))
        except AttError as exc:
            raise BleakError(f"Operation failed with {exc}") from None

    async def write_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, data: SizedBuffer
    ) -> None:
        """Simulated tables carry no writable descriptors."""
        raise BleakError(f"descriptor {descriptor.uuid} is not writable")

    async def start_notify(
        self,
        characteristic: BleakGATTCharacteristic,
        callback: NotifyCallback,
        **kwargs: Any,
    ) -> None:
        """Enable notifications; the peripheral calls ``callback`` on the loop."""
        self._require().subscribe(characteristic.uuid, callback)

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        """Disable notifications."""
        self._require().unsubscribe(characteristic.uuid)

    def _require(self) -> SimPeripheral:
        if self._peripheral is None:
            msg = "Not connected"
            raise BleakError(msg)
        return self._peripheral

    def _closed(self) -> None:
        self._peripheral = None
        self.services = None
        if self._disconnected_callback is not None:
            self._disconnected_callback()


def _service_collection(peripheral: SimPeripheral) -> BleakGATTServiceCollection:
    collection = BleakGATTServiceCollection()
    handle = 1
    for sim_service in peripheral.services:
        service = BleakGATTService(None, handle, sim_service.uuid)
        collection.add_service(service)
        handle += 1
        for sim_char in sim_service.characteristics:
            char = BleakGATTCharacteristic(
                None, handle, sim_char.uuid, list(sim_char.properties), lambda: _MTU - 3, service
            )
            collection.add_characteristic(char)
            handle += 2  # value handle and its CCCD
    return collection
