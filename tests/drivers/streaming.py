"""Running one device link to a simulated device until enough has arrived: the helpers the
link tests on both backends share."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from drivers.ble.link import DeviceLink
from drivers.ble.link_spec import DeviceSpec, LinkTimings
from drivers.frames import Frame, VitalReading, WaveformChunk
from drivers.sim.world import SimWorld
from tests.support import backends, wait_for

if TYPE_CHECKING:
    from collections.abc import Callable

    from drivers.sim.devices import SimDevice

FAST = LinkTimings(scan_timeout_s=2, connect_timeout_s=2, reconnect_min_s=0.01)


def received(frames: list[Frame], stream: str) -> int:
    """Samples of a waveform, or readings of a vital stream, among ``frames``."""
    waves = [f for f in frames if isinstance(f, WaveformChunk) and f.stream == stream]
    vitals = [f for f in frames if isinstance(f, VitalReading) and f.stream == stream]
    return sum(int(f.samples.shape[0]) for f in waves) + len(vitals)


async def stream_until(
    device: SimDevice, spec: DeviceSpec, kind: str, enough: Callable[[list[Frame]], bool]
) -> tuple[DeviceLink, list[Frame]]:
    """Run a link to ``device`` until ``enough`` of what it emitted, then until everything the
    device sent has arrived (notifications still on the radio, too).
    """
    frames: list[Frame] = []

    async def emit(frame: Frame) -> None:
        frames.append(frame)

    async with SimWorld([device], speed=2) as world, backends(kind, world) as chosen:
        link = DeviceLink(spec, chosen, emit, FAST, now=world.clock.now_s)
        task = asyncio.create_task(link.run())
        await wait_for(lambda: enough(frames), timeout_s=15)
        world.pause()
        await wait_for(
            lambda: all(received(frames, s) >= c.sent for s, c in device.counters.items()),
            timeout_s=15,
        )
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return link, frames
