"""The simulated backend through bleak's public API: scan, connect, notify, faults."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest
from bleak import BleakClient, BleakScanner
from bleak.exc import BleakDeviceNotFoundError, BleakError

from drivers.ble.backends import simulated
from drivers.gatt import uuids
from drivers.gatt.heart_rate import decode_heart_rate_measurement
from drivers.polar import pmd
from drivers.sim.devices import SimDevice, preset
from drivers.sim.world import SimWorld
from tests.support import wait_for

if TYPE_CHECKING:
    from bleak.backends.characteristic import BleakGATTCharacteristic

ADDRESS = "5A:00:00:00:00:01"


def watch(**overrides: object) -> SimDevice:
    return SimDevice(
        preset("watch", ADDRESS, "SimWatch-T", heart_rate_interval_s=0.01, **overrides)
    )


async def test_client_satisfies_bleaks_abstract_base_classes() -> None:
    """Test that bleak accepts the sim classes (fails fast if bleak adds an abstract method)."""
    backends = simulated(SimWorld([watch()]))
    assert backends.client is not None
    assert backends.scanner is not None
    client = BleakClient(ADDRESS, backend=backends.client)
    assert not client.is_connected
    BleakScanner(backend=backends.scanner)


async def test_scan_connect_notify_and_link_drop() -> None:
    """Test the full path: found by scanning, notifications arrive, a drop fires the callback."""
    device = watch()
    async with SimWorld([device], advert_interval_s=0.01) as world:
        backends = simulated(world)
        assert backends.scanner is not None
        found = await BleakScanner.find_device_by_address(
            ADDRESS, timeout=2, backend=backends.scanner, service_uuids=[uuids.HEART_RATE_SERVICE]
        )
        assert found is not None
        assert found.name == "SimWatch-T"
        dropped = asyncio.Event()
        client = BleakClient(
            found, disconnected_callback=lambda _c: dropped.set(), backend=backends.client
        )
        await client.connect()
        rates: list[int] = []

        def on_hr(_char: BleakGATTCharacteristic, data: bytearray) -> None:
            rates.append(decode_heart_rate_measurement(data).heart_rate_bpm)

        await client.start_notify(uuids.HEART_RATE_MEASUREMENT, on_hr)
        assert (await client.read_gatt_char(uuids.BATTERY_LEVEL))[0] == 90
        assert await client.read_gatt_char(uuids.MODEL_NUMBER) == b"watch"
        await wait_for(lambda: len(rates) >= 5)
        assert rates == device.counters["heart_rate"].values_sent[: len(rates)]

        device.drop_link()
        await asyncio.wait_for(dropped.wait(), 1)
        assert not client.is_connected
        with pytest.raises(BleakError):
            await client.read_gatt_char(uuids.BATTERY_LEVEL)
        await wait_for(lambda: device.counters["heart_rate"].lost_link_down >= 2)

        again = BleakClient(ADDRESS, backend=backends.client)
        await again.connect()
        assert again.is_connected
        await again.disconnect()
        assert device.link.connects == 2
        assert device.link.link_drops == 1


async def test_pmd_start_is_answered_and_wrong_settings_are_refused() -> None:
    """Test the control point: a wrong sample rate is refused, the right one starts frames."""
    device = SimDevice(preset("strap", ADDRESS, "Strap"))
    async with SimWorld([device], speed=10) as world:
        client = BleakClient(ADDRESS, backend=simulated(world).client)
        await client.connect()
        answers: list[pmd.ControlPointResponse] = []
        frames: list[pmd.PmdFrame] = []
        await client.start_notify(
            pmd.PMD_CONTROL_POINT,
            lambda _c, d: answers.append(pmd.decode_control_point_response(d)),
        )
        await client.start_notify(pmd.PMD_DATA, lambda _c, d: frames.append(pmd.decode_pmd_data(d)))
        await client.write_gatt_char(
            pmd.PMD_CONTROL_POINT,
            pmd.start_command(pmd.StreamSettings("ecg", 250, 14, 1)),
            response=True,
        )
        assert answers[-1].status_name == "invalid_sample_rate"
        await client.write_gatt_char(
            pmd.PMD_CONTROL_POINT,
            pmd.start_command(pmd.StreamSettings("ecg", 130, 14, 1)),
            response=True,
        )
        assert answers[-1].ok
        await wait_for(lambda: len(frames) >= 3)
        assert all(f.samples.shape == (73, 1) for f in frames)
        await client.disconnect()


async def test_out_of_range_refused_and_slow_connections() -> None:
    """Test the faults: out of range (not found), refused connects, then back in range."""
    device = watch()
    async with SimWorld([device], speed=10) as world:
        backends = simulated(world)
        device.go_out_of_range(2.0)  # simulated seconds: 0.2 s here
        with pytest.raises(BleakDeviceNotFoundError):
            await BleakClient(ADDRESS, backend=backends.client).connect()
        await wait_for(lambda: device.in_range)
        device.refuse_next_connects = 1
        with pytest.raises(BleakError, match="abort"):
            await BleakClient(ADDRESS, backend=backends.client).connect()
        device.connect_delay_s = 0.5
        with pytest.raises(TimeoutError):
            await BleakClient(ADDRESS, timeout=0.1, backend=backends.client).connect()
        device.connect_delay_s = 0.0
        client = BleakClient(ADDRESS, backend=backends.client)
        await client.connect()
        assert device.link.refused == 1
        await client.disconnect()
