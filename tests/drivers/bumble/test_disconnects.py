"""A peripheral that ends the link mid-procedure, with each common HCI reason, over bumble's
stack: the reason reaches the central as sent, and the gateway resumes where it was cut.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from drivers.ble.backends import bumble
from drivers.ble.link import DeviceLink
from drivers.ble.link_spec import DeviceSpec, LinkTimings
from drivers.bumble.serve import served
from drivers.frames import Frame, VitalReading, WaveformChunk
from drivers.polar import pmd
from drivers.sim.devices import SimDevice, preset
from drivers.sim.world import SimWorld
from tests.support import wait_for

FAST = LinkTimings(
    scan_timeout_s=2,
    connect_timeout_s=2,
    gatt_timeout_s=2,
    reconnect_min_s=0.01,
    reconnect_max_s=0.05,
)
REASONS = {
    0x08: "connection timeout",  # radio loss
    0x13: "remote user terminated",  # the device's own choice (power off, reset)
    0x22: "LL response timeout",  # a link-layer procedure unanswered
    0x3E: "failed to be established",  # lost within the first connection events
}


@pytest.mark.parametrize("reason", list(REASONS), ids=list(REASONS.values()))
async def test_a_record_transfer_cut_by_the_device_resumes_and_keeps_each_reading_once(
    reason: int,
) -> None:
    """Test a cuff that ends the link after a few records of a transfer: no half record, the
    rest fetched on the next connection, every reading kept.
    """
    device = SimDevice(
        preset(
            "cuff", "5A:00:00:00:0D:01", "C", blood_pressure_interval_s=5.0, record_interval_s=2.0
        )
    )
    readings: dict[str | None, VitalReading] = {}  # kept once by device timestamp, as the outbox

    async def emit(frame: Frame) -> None:
        if isinstance(frame, VitalReading):
            readings[frame.source_key] = frame

    async with (
        SimWorld([device], advert_interval_s=0.005, speed=50) as world,
        served(world) as (radio, _served),
    ):
        spec = DeviceSpec("cuff", device.address, record_cursors={})
        link = DeviceLink(spec, bumble(radio), emit, FAST, now=world.clock.now_s)
        task = asyncio.create_task(link.run())
        await wait_for(lambda: len(readings) >= 2, timeout_s=10)
        device.go_out_of_range(200.0)  # 40 readings kept meanwhile
        await wait_for(lambda: device.in_range, timeout_s=15)
        await wait_for(lambda: sum(r.backfilled for r in readings.values()) >= 5, timeout_s=10)
        device.drop_link(reason)
        await wait_for(lambda: len(readings) >= len(device.records), timeout_s=20)
        world.pause()  # the cuff measures on: hold its count still, then let the last one come
        await wait_for(lambda: len(readings) >= len(device.records), timeout_s=10)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    # the spell out of range ended the first link (0x08), the device the second
    assert radio.disconnections == Counter([0x08, reason])
    assert len(readings) == len(device.records)
    backfill = link.statistics().backfill
    # the device's drop cut a transfer; the spell out of range may have cut the first one too
    # (when it was still running: on a busy machine)
    assert backfill is not None and backfill.interrupted in (1, 2)


@pytest.mark.parametrize("reason", list(REASONS), ids=list(REASONS.values()))
async def test_a_strap_that_ends_the_link_at_the_pmd_start_streams_after_reconnecting(
    reason: int,
) -> None:
    """Test a strap that drops the link when asked to start ECG (the command unanswered): the
    link reconnects, starts the stream again, and every sample sent from then on arrives.
    """
    device = SimDevice(preset("strap", "5A:00:00:00:0D:02", "Strap"))
    device.drop_link_on_write(pmd.PMD_CONTROL_POINT, reason)
    samples = 0

    async def emit(frame: Frame) -> None:
        nonlocal samples
        if isinstance(frame, WaveformChunk):
            samples += frame.samples.shape[0]

    async with SimWorld([device], speed=2) as world, served(world) as (radio, _served):
        spec = DeviceSpec("strap", device.address, (pmd.StreamSettings("ecg", 130, 14, 1),))
        link = DeviceLink(spec, bumble(radio), emit, FAST, now=world.clock.now_s)
        task = asyncio.create_task(link.run())
        await wait_for(lambda: samples > 200, timeout_s=15)
        world.pause()
        await wait_for(lambda: samples >= device.counters["ecg"].sent, timeout_s=10)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    stats = link.statistics()
    assert radio.disconnections == Counter([reason]) and stats.connects == 2
    assert samples == device.counters["ecg"].sent and stats.decode_errors == 0
    assert device.counters["heart_rate"].sent > 0  # the rest of the device came back too
