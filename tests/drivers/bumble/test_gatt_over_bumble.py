"""bleak's API on our bumble backend against a GATT server written for the test: what a real
stack does and our simulator cannot show. CCCD values for notify and indicate, indications
confirmed, one UUID in two services addressed by handle, writes with or without response as
each characteristic declares, a burst of notifications in order, several notifications in one
connection event.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import TYPE_CHECKING

import pytest
from bleak import BleakClient, BleakScanner
from bleak.exc import BleakDeviceNotFoundError
from bumble.core import UUID
from bumble.gatt import Characteristic, CharacteristicValue, Service

from drivers.ble.backends import bumble
from drivers.bumble.connection_events import EventLink
from drivers.bumble.radio import BumbleRadio, new_device
from tests.support import wait_for

if TYPE_CHECKING:
    from bleak.backends.characteristic import BleakGATTCharacteristic
    from bumble.device import Device

ADDRESS = "5A:00:00:00:0F:01"
SERVICE_A = "6e400001-0000-1000-8000-000000000a0a"
SERVICE_B = "6e400001-0000-1000-8000-000000000b0b"
SHARED = "6e400002-0000-1000-8000-000000000000"  # in both services
WRITE = "6e400003-0000-1000-8000-000000000000"
COMMAND = "6e400004-0000-1000-8000-000000000000"
NOTIFY = "6e400005-0000-1000-8000-000000000000"
INDICATE = "6e400006-0000-1000-8000-000000000000"
P = Characteristic.Properties
RW = Characteristic.READABLE | Characteristic.WRITEABLE


class Server:
    """The test's peripheral: its characteristics, the values written, the ATT writes seen."""

    def __init__(self, radio: BumbleRadio) -> None:
        self.device: Device = new_device(radio.link, ADDRESS, "Test")
        self.values = {SERVICE_A: b"from A", SERVICE_B: b"from B"}
        self.written: list[tuple[str, bytes]] = []
        self.att_writes: list[str] = []  # "request" (answered) or "command" (not)

        def shared(service: str) -> Characteristic[bytes]:
            value = CharacteristicValue(
                read=lambda _c: self.values[service],
                write=lambda _c, data: self.values.__setitem__(service, bytes(data)),
            )
            return Characteristic(UUID(SHARED), P.READ | P.WRITE, RW, value)

        def sink(uuid: str, properties: Characteristic.Properties) -> Characteristic[bytes]:
            value = CharacteristicValue(write=lambda _c, data: self.written.append((uuid, data)))
            return Characteristic(UUID(uuid), properties, RW, value)

        self.notify: Characteristic[bytes] = Characteristic(UUID(NOTIFY), P.NOTIFY, RW, b"")
        self.indicate: Characteristic[bytes] = Characteristic(UUID(INDICATE), P.INDICATE, RW, b"")
        self.device.add_service(
            Service(
                UUID(SERVICE_A),
                [
                    shared(SERVICE_A),
                    sink(WRITE, P.WRITE),
                    sink(COMMAND, P.WRITE_WITHOUT_RESPONSE),
                    self.notify,
                    self.indicate,
                ],
            )
        )
        self.device.add_service(Service(UUID(SERVICE_B), [shared(SERVICE_B)]))
        server = self.device.gatt_server
        for kind in ("request", "command"):  # watch the ATT PDUs the central sends
            handler = getattr(server, f"on_att_write_{kind}")

            def spy(bearer: object, pdu: object, handler: object = handler, kind: str = kind):  # type: ignore[no-untyped-def]
                self.att_writes.append(kind)
                return handler(bearer, pdu)  # type: ignore[operator]

            setattr(server, f"on_att_write_{kind}", spy)

    def cccd(self, characteristic: Characteristic[bytes]) -> bytes | None:
        """The CCCD value the central wrote for ``characteristic`` (None: never written)."""
        for cccds in self.device.gatt_server.subscribers.values():
            if characteristic.handle in cccds:
                return bytes(cccds[characteristic.handle])
        return None


async def connected_client(radio: BumbleRadio, server: Server) -> BleakClient:
    await server.device.power_on()
    await server.device.start_advertising()
    chosen = bumble(radio)
    # as the gateway does: the device as heard advertising, its address type with it
    assert chosen.scanner is not None
    device = await BleakScanner.find_device_by_address(ADDRESS, 5, backend=chosen.scanner)
    assert device is not None
    client = BleakClient(device, backend=chosen.client, timeout=5)
    await client.connect()
    return client


def in_service(client: BleakClient, service: str, uuid: str) -> BleakGATTCharacteristic:
    found = client.services.get_service(service)
    assert found is not None
    characteristic = found.get_characteristic(uuid)
    assert characteristic is not None
    return characteristic


async def test_one_uuid_in_two_services_is_read_and_written_by_handle() -> None:
    """Test two characteristics with one UUID: each read gives its own service's value, a write
    changes only the one addressed.
    """
    radio = BumbleRadio()
    server = Server(radio)
    client = await connected_client(radio, server)
    try:
        a, b = in_service(client, SERVICE_A, SHARED), in_service(client, SERVICE_B, SHARED)
        assert a.handle != b.handle
        assert await client.read_gatt_char(a) == b"from A"
        assert await client.read_gatt_char(b) == b"from B"
        await client.write_gatt_char(b, b"new B")
        assert server.values == {SERVICE_A: b"from A", SERVICE_B: b"new B"}
        assert await client.read_gatt_char(b) == b"new B"
    finally:
        await client.disconnect()


async def test_writes_go_with_or_without_response_as_each_characteristic_declares() -> None:
    """Test bleak's default (the gateway's): a write request where the characteristic declares
    'write', a write command where it declares only 'write-without-response'.
    """
    radio = BumbleRadio()
    server = Server(radio)
    client = await connected_client(radio, server)
    try:
        await client.write_gatt_char(in_service(client, SERVICE_A, WRITE), b"\x01")
        await client.write_gatt_char(in_service(client, SERVICE_A, COMMAND), b"\x02")
        await wait_for(lambda: len(server.written) == 2)
    finally:
        await client.disconnect()
    assert server.att_writes == ["request", "command"]
    assert server.written == [(WRITE, b"\x01"), (COMMAND, b"\x02")]


async def test_notify_and_indicate_each_get_their_cccd_and_indications_are_confirmed() -> None:
    """Test CCCD 0x0001 for a notifying characteristic and 0x0002 for an indicating one; each
    indication confirmed by the central (the server's send returns only then); a burst of 50
    notifications queued at once arrives whole and in order; stop_notify clears the CCCD.
    """
    radio = BumbleRadio()
    server = Server(radio)
    client = await connected_client(radio, server)
    notified: list[bytes] = []
    indicated: list[bytes] = []
    try:
        await client.start_notify(
            in_service(client, SERVICE_A, NOTIFY), lambda _c, d: notified.append(bytes(d))
        )
        await client.start_notify(
            in_service(client, SERVICE_A, INDICATE), lambda _c, d: indicated.append(bytes(d))
        )
        assert server.cccd(server.notify) == b"\x01\x00"
        assert server.cccd(server.indicate) == b"\x02\x00"
        device = server.device
        async with asyncio.timeout(5):  # bumble waits for the confirmation of each
            for k in range(3):
                await device.indicate_subscribers(server.indicate, bytes([k]))
        assert indicated == [b"\x00", b"\x01", b"\x02"]
        burst = [
            device.notify_subscribers(server.notify, k.to_bytes(2, "little")) for k in range(50)
        ]
        await asyncio.gather(*burst)
        await wait_for(lambda: len(notified) == 50)
        assert [int.from_bytes(v, "little") for v in notified] == list(range(50))
        await client.stop_notify(in_service(client, SERVICE_A, NOTIFY))
        assert server.cccd(server.notify) == b"\x00\x00"
    finally:
        await client.disconnect()


async def test_a_connect_to_a_device_that_stopped_advertising_times_out_and_the_next_works() -> (
    None
):
    """Test a connect to a device that is powered but silent: it ends after the client's timeout
    as BlueZ ends it (device not found), and the central's controller is free again: a connect
    once the device advertises succeeds. (bumble's own controller never answered the cancel
    of a timed-out connect, and its host waited for ever.)
    """
    radio = BumbleRadio()
    server = Server(radio)
    await server.device.power_on()
    silent = BleakClient(ADDRESS, backend=bumble(radio).client, timeout=0.5)
    async with asyncio.timeout(5):
        with pytest.raises(BleakDeviceNotFoundError):
            await silent.connect()
    client = await connected_client(radio, server)
    try:
        assert await client.read_gatt_char(in_service(client, SERVICE_A, SHARED)) == b"from A"
    finally:
        await client.disconnect()


async def test_notifications_between_connection_events_arrive_together_whole_and_in_order() -> None:
    """Test a radio that carries data only at connection events (20 ms apart, as a wearable's
    link does): notifications sent 1 ms apart arrive several in one event, back to back, every
    one whole and in order; requests still answer (an event each way).
    """
    radio = BumbleRadio(connection_interval_s=0.02)
    server = Server(radio)
    client = await connected_client(radio, server)
    loop = asyncio.get_running_loop()
    arrived: list[tuple[float, int]] = []
    try:
        await client.start_notify(
            in_service(client, SERVICE_A, NOTIFY),
            lambda _c, d: arrived.append((loop.time(), int.from_bytes(d, "little"))),
        )
        for k in range(100):
            await server.device.notify_subscribers(server.notify, k.to_bytes(2, "little"))
            await asyncio.sleep(0.001)  # the device's pace, not a wait for anything
        await wait_for(lambda: len(arrived) == 100)
        assert await client.read_gatt_char(in_service(client, SERVICE_A, SHARED)) == b"from A"
    finally:
        await client.disconnect()
    assert [value for _, value in arrived] == list(range(100))
    assert isinstance(radio.link, EventLink)
    assert radio.link.largest_event >= 3
    # back to back: most arrive within a millisecond of the one before, in the same event
    together = sum(b[0] - a[0] < 0.001 for a, b in itertools.pairwise(arrived))
    assert together >= 50
