"""DeviceLink against simulated devices: frames, gaps, malformed packets, watchdog, slots."""

from __future__ import annotations

import asyncio
import itertools
from datetime import datetime

import pytest

from drivers.ble.backends import simulated
from drivers.ble.link import DeviceLink
from drivers.ble.link_spec import DeviceSpec, LinkTimings
from drivers.frames import Frame, GapMarker, VitalReading, WaveformChunk
from drivers.polar import pmd
from drivers.sim.devices import SimDevice, preset
from drivers.sim.world import SimWorld
from tests.support import wait_for

FAST = LinkTimings(
    scan_timeout_s=2,
    connect_timeout_s=2,
    reconnect_min_s=0.01,
    reconnect_max_s=0.05,
    stream_silence_s=0.3,
    watchdog_interval_s=0.05,
)


class Run:
    """A link running against a world, collecting what it emits."""

    def __init__(
        self, world: SimWorld, spec: DeviceSpec, connection_slots: asyncio.Semaphore | None = None
    ) -> None:
        self.frames: list[Frame] = []
        self.link = DeviceLink(
            spec,
            simulated(world),
            self._emit,
            FAST,
            now=world.clock.now_s,
            connection_slots=connection_slots,
        )

    async def _emit(self, frame: Frame) -> None:
        self.frames.append(frame)


def watch_spec(address: str) -> DeviceSpec:
    return DeviceSpec("w", address, (pmd.StreamSettings("ppg", 55, 22, 4),))


async def run_until(run: Run, condition: object, world: SimWorld) -> None:
    task = asyncio.create_task(run.link.run(), name="link-under-test")
    try:
        await wait_for(condition, timeout_s=15)  # type: ignore[arg-type]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_every_stream_of_a_watch_flows_and_malformed_packets_become_gaps() -> None:
    """Test vitals and PPG in order, each malformed packet counted and marked as a gap."""
    device = SimDevice(
        preset(
            "watch",
            "5A:00:00:00:00:02",
            "W",
            heart_rate_interval_s=0.5,
            spo2_interval_s=0.5,
            temperature_interval_s=2.0,
            blood_pressure_interval_s=3.0,
            malformed_rate=0.1,
            seed=3,
        )
    )
    async with SimWorld([device], advert_interval_s=0.01, speed=10) as world:
        run = Run(world, watch_spec(device.address))
        await run_until(
            run,
            lambda: (
                device.counters["blood_pressure"].sent >= 2
                and device.counters["heart_rate"].malformed >= 2
            ),
            world,
        )
    stats = run.link.statistics()
    readings = [f for f in run.frames if isinstance(f, VitalReading)]
    chunks = [f for f in run.frames if isinstance(f, WaveformChunk)]
    gaps = [f for f in run.frames if isinstance(f, GapMarker)]
    for stream in ("heart_rate", "spo2", "temperature", "blood_pressure"):
        mine = [r for r in readings if r.stream == stream]
        assert len(mine) == device.counters[stream].sent, stream
        assert [r.seq for r in mine] == list(range(len(mine)))
    assert [r.values["heart_rate_bpm"] for r in readings if r.stream == "heart_rate"] == (
        device.counters["heart_rate"].values_sent
    )
    assert sum(c.samples.shape[0] for c in chunks) == device.counters["ppg"].sent
    malformed_packets = sum(c.malformed_packets for c in device.counters.values())
    assert stats.decode_errors == malformed_packets > 0
    assert all(g.reason == "malformed" for g in gaps)
    assert len([g for g in gaps if g.stream == "heart_rate"]) >= 1
    assert stats.device_info["model"] == "watch"
    bp = next(r for r in readings if r.stream == "blood_pressure")
    assert bp.values["unit"] == "mmHg" and isinstance(bp.values["systolic"], float)


async def test_reconnects_after_drops_and_marks_each_gap() -> None:
    """Test that each out-of-range spell ends in a reconnect and a link_lost gap per stream."""
    device = SimDevice(preset("strap", "5A:00:00:00:00:03", "S", heart_rate_interval_s=0.25))
    spec = DeviceSpec("s", device.address, (pmd.StreamSettings("ecg", 130, 14, 1),))
    async with SimWorld([device], advert_interval_s=0.01, speed=2) as world:
        run = Run(world, spec)
        task = asyncio.create_task(run.link.run())
        for drop in range(1, 4):
            await wait_for(lambda: run.link.statistics().connected)
            count = len(run.frames)
            await wait_for(lambda c=count: len(run.frames) > c + 5)  # type: ignore[misc]
            device.go_out_of_range(2.0)  # simulated seconds: samples are surely lost
            await wait_for(lambda d=drop: run.link.statistics().links_lost == d)  # type: ignore[misc]
        await wait_for(lambda: run.link.statistics().connected)
        count = len(run.frames)
        await wait_for(lambda: len(run.frames) > count + 5)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    stats = run.link.statistics()
    assert stats.connects == 4 == device.link.connects
    gaps = [f for f in run.frames if isinstance(f, GapMarker)]
    assert {g.reason for g in gaps} == {"link_lost"}
    assert len([g for g in gaps if g.stream == "ecg"]) == 3
    assert len([g for g in gaps if g.stream == "heart_rate"]) == 3
    assert all(g.t1_s >= g.t0_s for g in gaps)
    samples = sum(f.samples.shape[0] for f in run.frames if isinstance(f, WaveformChunk))
    assert samples == device.counters["ecg"].sent
    ecg = next(s for s in stats.streams if s.stream == "ecg")
    assert (
        ecg.units == samples
        and ecg.expected_units is not None
        and ecg.expected_units >= samples * 0.8
    )


async def test_watchdog_resubscribes_a_silent_stream_then_reconnects() -> None:
    """Test both watchdog steps: a new PMD start, then (still silent) a rebuilt link."""
    device = SimDevice(preset("armband", "5A:00:00:00:00:04", "A", heart_rate_interval_s=None))
    spec = DeviceSpec("a", device.address, (pmd.StreamSettings("ppg", 135, 22, 4),))
    async with SimWorld([device], advert_interval_s=0.01) as world:
        run = Run(world, spec)
        task = asyncio.create_task(run.link.run())
        await wait_for(lambda: run.link.statistics().samples > 100)
        device.stall(pmd.PMD_DATA)
        await wait_for(lambda: run.link.statistics().resubscribes == 1)
        before = run.link.statistics().samples
        await wait_for(lambda: run.link.statistics().samples > before + 100)
        device.stall(pmd.PMD_DATA, until_reconnect=True)
        await wait_for(lambda: run.link.statistics().watchdog_reconnects == 1)
        before = run.link.statistics().samples
        await wait_for(lambda: run.link.statistics().samples > before + 100)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    stats = run.link.statistics()
    assert stats.resubscribes == 2
    assert stats.links_lost == 0
    assert device.link.connects == 2
    reasons = [f.reason for f in run.frames if isinstance(f, GapMarker)]
    assert reasons == ["silent", "silent"]


async def test_connection_slots_queue_devices_beyond_the_cap() -> None:
    """Test that with 2 slots only 2 of 3 devices connect until one leaves."""
    devices = [SimDevice(preset("strap", f"5A:00:00:00:01:0{i}", f"S{i}")) for i in range(3)]
    slots = asyncio.Semaphore(2)
    async with SimWorld(devices, advert_interval_s=0.01, speed=10) as world:
        runs = [
            Run(world, DeviceSpec(f"s{i}", d.address), connection_slots=slots)
            for i, d in enumerate(devices)
        ]
        tasks = [asyncio.create_task(r.link.run()) for r in runs]
        await wait_for(lambda: sum(r.link.statistics().connected for r in runs) == 2)
        connected = [d for d in devices if d.connected]
        waiting = next(d for d in devices if not d.connected)
        connected[0].go_out_of_range(1000.0)
        await wait_for(lambda: waiting.connected)
        assert sum(d.connected for d in devices) == 2
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    assert not any(d.connected for d in devices)


async def test_device_clock_is_mapped_to_utc() -> None:
    """Test that a device clock an hour off still yields chunk times on the gateway's clock."""
    device = SimDevice(preset("armband", "5A:00:00:00:00:05", "A", clock_offset_s=-3600.0))
    spec = DeviceSpec("a", device.address, (pmd.StreamSettings("ppg", 135, 22, 4),))
    async with SimWorld([device], advert_interval_s=0.01) as world:
        run = Run(world, spec)
        await run_until(run, lambda: run.link.statistics().samples > 300, world)
        now = world.clock.now_s()
    chunks = [f for f in run.frames if isinstance(f, WaveformChunk)]
    assert all(abs(c.t0_s - now) < 10 for c in chunks)
    offset = run.link.statistics().clock_offset_s
    assert offset is not None and offset == pytest.approx(3600.0, abs=0.5)
    # consecutive chunks tile the time line: no gap, no overlap beyond delivery jitter
    for a, b in itertools.pairwise(chunks):
        assert abs(b.t0_s - (a.t0_s + a.samples.shape[0] / 135.0)) < 0.05


async def test_refused_connects_are_counted_by_class_and_retried_at_their_floor() -> None:
    """Test a strap that leaves three connection requests unanswered: 'aborted' three times,
    each retried after the transient floor, then connected.
    """
    device = SimDevice(preset("strap", "5A:00:00:00:00:07", "S", heart_rate_interval_s=0.25))
    device.refuse_next_connects = 3
    async with SimWorld([device], advert_interval_s=0.01, speed=2) as world:
        run = Run(world, DeviceSpec("s", device.address))
        await run_until(run, lambda: run.link.statistics().connected, world)
    stats = run.link.statistics()
    assert device.link.refused == 3
    assert stats.failures == {"aborted": 3}
    assert stats.connects == 1


async def test_a_pinetime_gives_steps_motion_and_heart_rate_and_bad_packets_are_counted() -> None:
    """Test InfiniTime's Motion Service through the link: every step count in order, every
    accelerometer reading, heart rate beside them; malformed ones counted, never raised."""
    device = SimDevice(
        preset("pinetime", "5A:00:00:00:00:0B", "InfiniTime", steps_interval_s=0.5, seed=4)
    )
    device.malformed_rate = 0.05
    spec = DeviceSpec("pt", device.address, ())
    async with SimWorld([device], advert_interval_s=0.01, speed=5) as world:
        run = Run(world, spec)
        await run_until(
            run,
            lambda: device.counters["steps"].sent >= 20 and device.counters["motion"].malformed > 0,
            world,
        )
    readings = [f for f in run.frames if isinstance(f, VitalReading)]
    steps = [r for r in readings if r.stream == "steps"]
    counts = [r.values["steps"] for r in steps]
    assert counts == device.counters["steps"].values_sent
    assert device.counters["steps"].values_sent[-1] > device.counters["steps"].values_sent[0]
    motion = [r for r in readings if r.stream == "motion"]
    assert len(motion) == device.counters["motion"].sent > 100
    assert all(set(r.values) == {"x", "y", "z"} for r in motion)
    assert any(r.stream == "heart_rate" for r in readings)
    malformed = sum(c.malformed_packets for c in device.counters.values())
    assert run.link.statistics().decode_errors == malformed > 0


async def test_set_clock_writes_the_hosts_time_and_a_device_without_one_is_told_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Test ``set_clock`` on a PineTime whose clock is five hours off: the link writes the
    host's local time to its Current Time at each connect (the watch's offset is then the
    host's UTC offset); a strap, which has no writable Current Time, gets one warning."""
    pinetime = SimDevice(
        preset("pinetime", "5A:00:00:00:00:0C", "InfiniTime", clock_offset_s=5 * 3600.0)
    )
    strap = SimDevice(preset("strap", "5A:00:00:00:00:0D", "S", heart_rate_interval_s=0.25))
    async with SimWorld([pinetime, strap], advert_interval_s=0.01, speed=2) as world:
        links = [
            DeviceLink(
                DeviceSpec(name, device.address, set_clock=True),
                simulated(world),
                _ignore,
                FAST,
                now=world.clock.now_s,
                utc=world.clock.now_s,
            )
            for name, device in (("pt", pinetime), ("s", strap))
        ]
        tasks = [asyncio.create_task(link.run()) for link in links]
        try:
            await wait_for(lambda: all(link.statistics().readings > 2 for link in links))
            pinetime.drop_link()
            await wait_for(lambda: pinetime.clock_sets == 2)  # again after the reconnect
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    host_offset_s = datetime.now().astimezone().utcoffset()
    assert host_offset_s is not None
    assert abs(pinetime.clock_offset_s - host_offset_s.total_seconds()) < 2.0
    assert links[0].clock_sets == 2 and links[1].clock_sets == 0
    told = [r for r in caplog.records if "no writable Current Time" in r.getMessage()]
    assert len(told) == 1 and "s:" in told[0].getMessage()


async def _ignore(_frame: Frame) -> None:
    return None


async def test_an_armbands_ppi_stream_beside_its_ppg_gives_every_interval() -> None:
    """Test PPI (PMD measurement 3, no settings) started beside PPG on a Verity-like arm band:
    every interval the device sent arrives as a ``ppi`` reading, in order, through a drop and
    the restart it needs; malformed frames counted."""
    device = SimDevice(preset("armband", "5A:00:00:00:00:0E", "Verity", ppi_interval_s=0.2))
    device.malformed_rate = 0.05
    spec = DeviceSpec(
        "a",
        device.address,
        (pmd.StreamSettings("ppg", 135, 22, 4), pmd.StreamSettings("ppi", 0, 0, 0)),
    )
    async with SimWorld([device], advert_interval_s=0.01, speed=2) as world:
        run = Run(world, spec)
        task = asyncio.create_task(run.link.run())
        try:
            await wait_for(lambda: device.counters["ppi"].sent >= 10)
            device.drop_link()
            count = device.counters["ppi"].sent
            await wait_for(lambda: device.counters["ppi"].sent >= count + 10)
            world.pause()
            sent = device.counters["ppi"].sent
            await wait_for(
                lambda: len([f for f in run.frames if getattr(f, "stream", "") == "ppi"]) >= sent
            )
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    readings = [f for f in run.frames if isinstance(f, VitalReading) and f.stream == "ppi"]
    intervals = [r.values["intervals"] for r in readings]
    assert [i[0]["interval_ms"] for i in intervals] == device.counters["ppi"].values_sent  # type: ignore[index]
    assert [r.seq for r in readings] == list(range(len(readings)))
    stats = run.link.statistics()
    assert stats.connects == 2
    assert stats.decode_errors == sum(c.malformed_packets for c in device.counters.values())
    assert sum(c.samples.shape[0] for c in run.frames if isinstance(c, WaveformChunk)) > 0


async def test_a_stream_the_device_stops_itself_is_started_again_on_the_same_link() -> None:
    """Test Polar's ONLINE_MEASUREMENT_STOPPED (``01`` and the stream's type on the control
    point, e.g. a strap put on its charger for a moment): the link starts the stream again
    without reconnecting and counts it; every sample sent arrives."""
    device = SimDevice(preset("strap", "5A:00:00:00:00:0F", "S", heart_rate_interval_s=0.25))
    spec = DeviceSpec("s", device.address, (pmd.StreamSettings("ecg", 130, 14, 1),))
    async with SimWorld([device], advert_interval_s=0.01, speed=2) as world:
        run = Run(world, spec)
        task = asyncio.create_task(run.link.run())
        try:
            await wait_for(lambda: device.counters["ecg"].sent > 300)
            device.stop_measurement()
            count = device.counters["ecg"].sent
            await wait_for(lambda: device.counters["ecg"].sent > count + 300)
            world.pause()
            sent = device.counters["ecg"].sent

            def all_arrived() -> bool:
                chunks = [f for f in run.frames if isinstance(f, WaveformChunk)]
                return bool(sum(c.samples.shape[0] for c in chunks) >= sent)

            await wait_for(all_arrived)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    stats = run.link.statistics()
    assert (stats.connects, stats.pmd_restarts) == (1, 1)
    assert sum(c.samples.shape[0] for c in run.frames if isinstance(c, WaveformChunk)) == sent
    # the restart came within a watchdog round: too soon for a gap the clock can see; any that
    # is seen says why
    gaps = [f for f in run.frames if isinstance(f, GapMarker) and f.stream == "ecg"]
    assert all(g.reason == "stopped" for g in gaps)
