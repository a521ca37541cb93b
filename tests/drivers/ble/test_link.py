"""DeviceLink against simulated watches: frames out, malformed packets counted, reconnects."""

from __future__ import annotations

import asyncio

from drivers.ble.backends import simulated
from drivers.ble.link import DeviceLink, DeviceSpec, LinkTimings
from drivers.frames import Frame, VitalReading, WaveformChunk
from drivers.sim.watch import SimWatch, WatchSpec
from drivers.sim.world import SimWorld
from tests.support import wait_for

ADDRESS = "5A:00:00:00:00:02"
FAST = LinkTimings(
    scan_timeout_s=2, connect_timeout_s=2, reconnect_min_s=0.01, reconnect_max_s=0.05
)


async def test_frames_flow_and_malformed_packets_are_counted_and_dropped() -> None:
    """Test that readings and PPG chunks arrive in order, and every malformed packet is counted."""
    watch = SimWatch(WatchSpec(ADDRESS, "W", heart_rate_interval_s=0.01, malformed_every=4))
    frames: list[Frame] = []

    async def emit(frame: Frame) -> None:
        frames.append(frame)

    async with SimWorld([watch], advert_interval_s=0.01) as world:
        link = DeviceLink(DeviceSpec("w", ADDRESS), simulated(world), emit, FAST)
        task = asyncio.create_task(link.run())
        await wait_for(lambda: link.statistics().readings >= 30)
        await wait_for(lambda: link.statistics().samples >= 55)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    readings = [f for f in frames if isinstance(f, VitalReading)]
    chunks = [f for f in frames if isinstance(f, WaveformChunk)]
    stats = link.statistics()
    assert stats.decode_errors == watch.link.malformed_sent > 0
    assert [r.values["heart_rate_bpm"] for r in readings] == watch.heart_rate.values_sent[
        : len(readings)
    ]
    assert [r.seq for r in readings] == list(range(len(readings)))
    assert all(c.samples.shape == (11, 4) and c.sample_rate_hz == 55 for c in chunks)
    assert [c.seq for c in chunks] == list(range(len(chunks)))
    assert not stats.connected


async def test_reconnects_after_link_drops() -> None:
    """Test that the link comes back after each drop, and says it lost it."""
    watch = SimWatch(WatchSpec(ADDRESS, "W", heart_rate_interval_s=0.01))
    received: list[Frame] = []

    async def emit(frame: Frame) -> None:
        received.append(frame)

    async with SimWorld([watch], advert_interval_s=0.01) as world:
        link = DeviceLink(DeviceSpec("w", ADDRESS), simulated(world), emit, FAST)
        task = asyncio.create_task(link.run())
        for drop in range(1, 4):
            await wait_for(lambda: link.statistics().connected)
            count = len(received)
            await wait_for(lambda c=count: len(received) > c + 3)  # type: ignore[misc]
            watch.drop_link()
            await wait_for(lambda d=drop: link.statistics().links_lost == d)  # type: ignore[misc]
        await wait_for(lambda: link.statistics().connected)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    stats = link.statistics()
    assert stats.connects == 4 == watch.link.connects
    readings = [f for f in received if isinstance(f, VitalReading)]
    assert len(readings) == watch.heart_rate.sent
