"""DeviceLink through bleak's API on bumble's host stack: the same wearables as the simulator's,
over real ATT, GATT and a virtual radio.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from drivers.ble.backends import bumble
from drivers.ble.link import DeviceLink
from drivers.ble.link_spec import DeviceSpec, LinkTimings
from drivers.bumble.serve import served
from drivers.frames import Frame, GapMarker, VitalReading, WaveformChunk
from drivers.polar import pmd
from drivers.sim.devices import SimDevice, preset
from drivers.sim.world import SimWorld
from tests.support import wait_for

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

FAST = LinkTimings(
    scan_timeout_s=2,
    connect_timeout_s=2,
    reconnect_min_s=0.01,
    reconnect_max_s=0.05,
)


async def test_a_strap_streams_ecg_and_heart_rate_and_comes_back_after_drops() -> None:
    """Test an H10-like strap: 229-byte PMD frames whole at the exchanged MTU, every sample
    and reading sent received, each spell out of range (the link ends as a supervision timeout,
    advertising stops) reconnected with a gap per stream.
    """
    device = SimDevice(preset("strap", "5A:00:00:00:00:03", "Strap", heart_rate_interval_s=0.25))
    spec = DeviceSpec("s", device.address, (pmd.StreamSettings("ecg", 130, 14, 1),))
    frames: list[Frame] = []

    async def emit(frame: Frame) -> None:
        frames.append(frame)

    async with SimWorld([device], speed=2) as world, served(world) as (radio, _served):
        link = DeviceLink(spec, bumble(radio), emit, FAST, now=world.clock.now_s)
        task = asyncio.create_task(link.run())
        for drop in range(1, 3):
            await wait_for(lambda: link.statistics().connected, timeout_s=15)
            count = len(frames)
            await wait_for(lambda c=count: len(frames) > c + 5, timeout_s=15)  # type: ignore[misc]
            device.go_out_of_range(2.0)  # simulated seconds: advertising stops, samples are lost
            await wait_for(lambda d=drop: link.statistics().links_lost == d, timeout_s=15)  # type: ignore[misc]
        await wait_for(lambda: link.statistics().connected, timeout_s=15)
        count = len(frames)
        await wait_for(lambda: len(frames) > count + 5, timeout_s=15)
        world.pause()
        sent = device.counters["ecg"].sent
        hr_sent = device.counters["heart_rate"].sent

        def all_arrived() -> bool:  # notifications still on their way over the radio, too
            samples = sum(f.samples.shape[0] for f in frames if isinstance(f, WaveformChunk))
            hr = [f for f in frames if isinstance(f, VitalReading) and f.stream == "heart_rate"]
            return samples >= sent and len(hr) >= hr_sent

        await wait_for(all_arrived, timeout_s=15)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    stats = link.statistics()
    assert stats.connects == 3 and stats.decode_errors == 0
    samples = sum(f.samples.shape[0] for f in frames if isinstance(f, WaveformChunk))
    assert samples == device.counters["ecg"].sent
    readings = [f for f in frames if isinstance(f, VitalReading) and f.stream == "heart_rate"]
    assert [r.values["heart_rate_bpm"] for r in readings] == device.counters[
        "heart_rate"
    ].values_sent
    gaps = [f for f in frames if isinstance(f, GapMarker)]
    assert len([g for g in gaps if g.stream == "ecg"]) == 2
    assert len([g for g in gaps if g.stream == "heart_rate"]) == 2
    assert radio.disconnections[0x08] == 2  # each drop reached the central as a supervision timeout


async def test_refused_connects_are_classed_aborted_and_retried() -> None:
    """Test a strap that ends the first two connections at once: BlueZ's words, counted as
    'aborted', retried at the transient floor, then connected.
    """
    device = SimDevice(preset("strap", "5A:00:00:00:00:07", "Strap", heart_rate_interval_s=0.25))
    device.refuse_next_connects = 2
    frames: list[Frame] = []

    async def emit(frame: Frame) -> None:
        frames.append(frame)

    async with SimWorld([device], speed=2) as world, served(world) as (radio, _served):
        link = DeviceLink(DeviceSpec("s", device.address), bumble(radio), emit, FAST)
        task = asyncio.create_task(link.run())
        await wait_for(lambda: len(frames) > 3, timeout_s=15)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    stats = link.statistics()
    assert device.link.refused == 2
    assert stats.failures == {"aborted": 2} and stats.connects == 1


async def test_links_connecting_at_once_are_queued_as_bluez_queues_them() -> None:
    """Test five straps whose links all connect at the same moment on one central: one LE
    connection is made at a time, every link connects once, and each receives exactly what its
    own strap sent. (Without the queue the controller refused the second initiator, and one
    link was handed another strap's connection: 438 samples from a strap that sent none.)
    """
    devices = [
        SimDevice(preset("strap", f"5A:00:00:00:00:2{i}", f"Strap{i}", seed=i)) for i in range(5)
    ]
    specs = [
        DeviceSpec(f"s{i}", d.address, (pmd.StreamSettings("ecg", 130, 14, 1),))
        for i, d in enumerate(devices)
    ]
    frames: dict[str, int] = {spec.device_id: 0 for spec in specs}

    def emitter(device_id: str) -> Callable[[Frame], Awaitable[None]]:
        async def emit(frame: Frame) -> None:
            if isinstance(frame, WaveformChunk):
                frames[device_id] += frame.samples.shape[0]

        return emit

    async with SimWorld(devices, speed=2) as world, served(world) as (radio, _served):
        links = [
            DeviceLink(spec, bumble(radio), emitter(spec.device_id), FAST, now=world.clock.now_s)
            for spec in specs
        ]
        tasks = [asyncio.create_task(link.run()) for link in links]
        await wait_for(lambda: all(n > 200 for n in frames.values()), timeout_s=20)
        world.pause()
        await wait_for(
            lambda: all(
                frames[s.device_id] >= d.counters["ecg"].sent
                for s, d in zip(specs, devices, strict=True)
            ),
            timeout_s=10,
        )
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for spec, device, link in zip(specs, devices, links, strict=True):
        assert frames[spec.device_id] == device.counters["ecg"].sent
        assert link.statistics().connects == 1 and link.statistics().decode_errors == 0
