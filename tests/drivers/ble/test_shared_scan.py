"""The adapter's one scan shared by its links (on the simulator's bleak backend)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from drivers.ble.backends import BleBackends, simulated
from drivers.ble.shared_scan import SharedScan
from drivers.errors import DeviceNotFound
from drivers.sim.devices import SimDevice, preset
from drivers.sim.world import SimWorld
from tests.support import wait_for

WATCH, STRAP = "5A:00:00:00:00:01", "5A:00:00:00:00:31"


def counting(backends: BleBackends, started: list[int]) -> BleBackends:
    """The same backends, their scanner counting its starts."""
    assert backends.scanner is not None
    base: Any = backends.scanner

    async def start(self: Any) -> None:
        started.append(1)
        await base.start(self)

    scanner = type("CountingScanner", (base,), {"start": start})
    return BleBackends(scanner, backends.client, backends.recover_adapter)


async def test_links_looking_at_once_share_one_scan_that_stops_after_them() -> None:
    """Test two devices looked for at once, then a third look while the scan still runs: one
    scanner start; the scan stops a linger after the last look, and a look after that starts
    it again."""
    devices = [SimDevice(preset("watch", WATCH, "W")), SimDevice(preset("strap", STRAP, "S"))]
    started: list[int] = []
    async with SimWorld(devices, advert_interval_s=0.05) as world:
        backends = counting(simulated(world), started)
        async with SharedScan(backends, linger_s=0.3) as scan:
            watch, strap = await asyncio.gather(scan.find(WATCH, 2), scan.find(STRAP, 2))
            assert (watch[0].address, strap[0].address) == (WATCH, STRAP)
            again, _ = await scan.find(STRAP, 2)
            assert again.address == STRAP
            assert started == [1]
            await wait_for(lambda: not scan.scanning, timeout_s=5)
            await scan.find(WATCH, 6)
            assert started == [1, 1] and scan.scanning
        assert not scan.scanning  # the end of the block stops it


async def test_a_device_that_does_not_advertise_is_not_found_in_time() -> None:
    """Test a look for an address nothing advertises: DeviceNotFound after the timeout."""
    world = SimWorld([SimDevice(preset("watch", WATCH, "W"))])
    async with world, SharedScan(simulated(world)) as scan:
        with pytest.raises(DeviceNotFound):
            await scan.find("5A:00:00:00:00:99", 0.3)
