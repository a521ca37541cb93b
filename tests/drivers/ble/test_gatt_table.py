"""Characteristics addressed by handle: a device with one UUID in two services still connects,
streams, and is read from the first service that holds it. On both backends.
"""

from __future__ import annotations

import asyncio

import pytest

from drivers.ble.link import DeviceLink
from drivers.ble.link_spec import DeviceSpec, LinkTimings
from drivers.frames import Frame, VitalReading
from drivers.gatt import uuids
from drivers.sim.devices import SimDevice, preset
from drivers.sim.peripheral import SimCharacteristic, SimService
from drivers.sim.world import SimWorld
from tests.support import BACKENDS, backends, wait_for

FAST = LinkTimings(scan_timeout_s=2, connect_timeout_s=2, reconnect_min_s=0.01)


@pytest.mark.parametrize("kind", BACKENDS)
async def test_a_device_with_a_second_battery_service_connects_and_streams(kind: str) -> None:
    """Test a watch with two Battery services (two Battery Level characteristics, one UUID):
    bleak refuses that UUID as a key, the link addresses each characteristic by its handle,
    reads the battery and streams heart rate (before, it could not connect at all).
    """
    device = SimDevice(preset("watch", "5A:00:00:00:02:01", "Watch", heart_rate_interval_s=0.25))
    second = SimService(
        uuids.BATTERY_SERVICE, (SimCharacteristic(uuids.BATTERY_LEVEL, ("read", "notify")),)
    )
    device.services = (*device.services, second)
    frames: list[Frame] = []

    async def emit(frame: Frame) -> None:
        frames.append(frame)

    spec = DeviceSpec("w", device.address)
    async with SimWorld([device], speed=2) as world, backends(kind, world) as chosen:
        link = DeviceLink(spec, chosen, emit, FAST, now=world.clock.now_s)
        task = asyncio.create_task(link.run())
        await wait_for(
            lambda: (
                sum(isinstance(f, VitalReading) and f.stream == "heart_rate" for f in frames) >= 3
            ),
            timeout_s=15,
        )
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    stats = link.statistics()
    assert stats.connects == 1 and stats.failures == {} and stats.decode_errors == 0
    assert stats.battery_pct == round(device.battery_pct)
