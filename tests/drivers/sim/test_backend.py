"""The simulated backend through bleak's public API: scan, connect, notify, drop, reconnect."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest
from bleak import BleakClient, BleakScanner
from bleak.exc import BleakDeviceNotFoundError, BleakError

from drivers.ble.backends import simulated
from drivers.gatt import uuids
from drivers.gatt.heart_rate import decode_heart_rate_measurement
from drivers.sim.watch import SimWatch, WatchSpec
from drivers.sim.world import SimWorld
from tests.support import wait_for

if TYPE_CHECKING:
    from bleak.backends.characteristic import BleakGATTCharacteristic

ADDRESS = "5A:00:00:00:00:01"


def _watch(**kw: object) -> SimWatch:
    return SimWatch(WatchSpec(ADDRESS, "SimWatch-T", heart_rate_interval_s=0.01, **kw))  # type: ignore[arg-type]


async def test_client_satisfies_bleaks_abstract_base_classes() -> None:
    """Test that bleak accepts the sim classes (fails fast if bleak adds an abstract method)."""
    backends = simulated(SimWorld([_watch()]))
    assert backends.client is not None and backends.scanner is not None
    client = BleakClient(ADDRESS, backend=backends.client)
    assert not client.is_connected
    BleakScanner(backend=backends.scanner)


async def test_scan_connect_notify_and_link_drop() -> None:
    """Test the full path: found by scanning, notifications arrive, a drop fires the callback."""
    watch = _watch()
    async with SimWorld([watch], advert_interval_s=0.01) as world:
        backends = simulated(world)
        assert backends.scanner is not None
        device = await BleakScanner.find_device_by_address(
            ADDRESS, timeout=2, backend=backends.scanner, service_uuids=[uuids.HEART_RATE_SERVICE]
        )
        assert device is not None and device.name == "SimWatch-T"
        dropped = asyncio.Event()
        client = BleakClient(
            device, disconnected_callback=lambda _c: dropped.set(), backend=backends.client
        )
        await client.connect()
        rates: list[int] = []

        def on_hr(_char: BleakGATTCharacteristic, data: bytearray) -> None:
            rates.append(decode_heart_rate_measurement(data).heart_rate_bpm)

        await client.start_notify(uuids.HEART_RATE_MEASUREMENT, on_hr)
        assert (await client.read_gatt_char(uuids.BATTERY_LEVEL))[0] == 87
        await wait_for(lambda: len(rates) >= 5)
        assert rates == watch.heart_rate.values_sent[: len(rates)]

        watch.drop_link()
        await asyncio.wait_for(dropped.wait(), 1)
        assert not client.is_connected
        with pytest.raises(BleakError):
            await client.read_gatt_char(uuids.BATTERY_LEVEL)
        await wait_for(lambda: watch.heart_rate.lost_link_down >= 2)

        again = BleakClient(ADDRESS, backend=backends.client)
        await again.connect()
        assert again.is_connected
        await again.disconnect()
        assert watch.link.connects == 2 and watch.link.link_drops == 1


async def test_out_of_range_device_is_not_found() -> None:
    """Test that connecting to a device out of range raises BleakDeviceNotFoundError."""
    watch = _watch()
    watch.in_range = False
    async with SimWorld([watch]) as world:
        with pytest.raises(BleakDeviceNotFoundError):
            await BleakClient(ADDRESS, backend=simulated(world).client).connect()
        scanner = simulated(world).scanner
        assert scanner is not None
        found = await BleakScanner.find_device_by_address(ADDRESS, timeout=0.1, backend=scanner)
        assert found is None
