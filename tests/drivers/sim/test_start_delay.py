"""Devices switched on at different times measure out of step, as real ones do."""

from __future__ import annotations

import asyncio

from drivers.sim.clock import SimClock
from drivers.sim.devices import SimDevice, preset
from tests.support import wait_for


async def test_a_device_switched_on_later_starts_measuring_then() -> None:
    loop = asyncio.get_running_loop()
    clock = SimClock()
    early = SimDevice(preset("strap", "5A:00:00:00:0D:01", "early", heart_rate_interval_s=0.1))
    late = SimDevice(
        preset("strap", "5A:00:00:00:0D:02", "late", heart_rate_interval_s=0.1, start_delay_s=2.0)
    )
    started = loop.time()
    for device in (early, late):
        device.start(loop, clock)
    try:
        await wait_for(lambda: early.counters["heart_rate"].produced >= 2)
        assert late.counters["heart_rate"].produced == 0  # its first reading is at 2.1 s
        await wait_for(lambda: late.counters["heart_rate"].produced >= 1)
        assert loop.time() - started >= 2.1 - 0.01
        assert abs(late.started_utc_s - early.started_utc_s - 2.0) < 0.05
    finally:
        early.stop()
        late.stop()
    assert late.counters["heart_rate"].produced <= early.counters["heart_rate"].produced
