"""Clock trust: a wall clock a day behind (no RTC, no network yet) that NTP then fixes."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from typing import TYPE_CHECKING

from gateway.codec import iso_utc
from gateway.config import Settings
from gateway.daemon import Daemon
from gateway.emulator.app import STATE_KEY
from gateway.simulation import build_world
from gateway.wallclock import ClockReading, ClockWatch, ShiftedClock
from tests.support import daemon_config, wait_for

if TYPE_CHECKING:
    from pathlib import Path

    from aiohttp.test_utils import TestServer

    from drivers.sim.devices import SimDevice

DAY_S = 86_400.0


async def test_a_clock_jump_mid_recording_ends_on_one_time_line(
    tmp_path: Path, emulator: TestServer
) -> None:
    """Test readings stamped while the clock was a day behind and unsynchronised: after the
    jump every stored time is on the true time line, and the uploads carry corrected times.
    """
    settings = Settings.model_validate(
        daemon_config(
            tmp_path,
            str(emulator.make_url("")),
            [{"model": "strap", "address": "5A:00:00:00:00:01", "heart_rate_interval_ms": 50}],
            [{"id": "s1", "address": "5A:00:00:00:00:01"}],
            sync={
                "mode": "batch",
                "batch_interval_s": 86_400,
                "record_interval_s": 0,
                "min_request_interval_s": 0,
            },
            clock={"check_interval_s": 0.05},
        )
    )
    world = build_world(settings.ble.sim)
    clock = ShiftedClock(world.clock.now_s, offset_s=-DAY_S, synced=False)
    daemon = Daemon(settings, sim_world=world, wallclock=clock)
    strap: SimDevice = world.peripherals["5A:00:00:00:00:01"]  # type: ignore[assignment]
    state = emulator.app[STATE_KEY]
    started = time.time()
    runner = asyncio.create_task(daemon.run())
    try:
        await daemon.wait_ready()
        await wait_for(lambda: strap.counters["heart_rate"].sent >= 20)
        before_jump = strap.counters["heart_rate"].sent
        await daemon.study_context().mark("lights off", None)
        clock.set(0.0, synced=True)  # NTP synchronised the clock
        await wait_for(lambda: strap.counters["heart_rate"].sent >= before_jump + 20)
        strap.stop()
        sent = len(strap.counters["heart_rate"].values_sent)

        async def all_committed() -> bool:
            return (await daemon.statistics()).outbox.backlog["health_upload"].pending >= sent

        await wait_for(all_committed)
        progress = await daemon.request_sync()
        await wait_for(lambda: progress.state == "done")
    finally:
        daemon.stop()
        await runner
    ended = time.time()
    stats = await daemon.statistics()
    assert stats.clock_jumps == 1
    assert stats.clock_synced is True
    with sqlite3.connect(tmp_path / "wgw.sqlite") as db:
        rows = db.execute(
            "SELECT t0_s, clock_corrected_s FROM records WHERE stream = 'heart_rate' ORDER BY id"
        ).fetchall()
        events = db.execute(
            "SELECT offset_before_s, offset_after_s, synced, rows_corrected FROM clock_events"
        ).fetchall()
        ((marked_at,),) = db.execute("SELECT t_s FROM markers").fetchall()
    assert started <= marked_at <= ended  # the marker moved with the samples
    times = [t for t, _ in rows]
    assert len(times) == sent
    assert all(started - 1 <= t <= ended + 1 for t in times)  # no reading a day off
    assert times == sorted(times)  # one time line, in arrival order
    corrected = [c for _, c in rows if c]
    assert len(corrected) >= before_jump - 2 and set(corrected) == {DAY_S}
    ((before, after, synced, moved),) = events
    assert (before, after, synced) == (-DAY_S, 0.0, 1)
    assert moved >= len(corrected)  # the battery reading and gaps moved too
    uploaded = [r["timestamp"] for r in state.records["s1"]]
    assert len(uploaded) == sent
    assert all(iso_utc(started - 1) <= t <= iso_utc(ended + 1) for t in uploaded)


def test_slew_is_not_a_jump_and_a_jump_reports_its_size() -> None:
    """Test the watch: moves under the threshold pass, one over it is reported once."""
    watch = ClockWatch(ClockReading(100.0, 1000.0, False), threshold_s=2.0)
    assert watch.check(ClockReading(101.0, 1001.5, False)) is None
    jump = watch.check(ClockReading(102.0, 4600.0, True))
    assert jump is not None
    assert jump.delta_s == 3600.0
    assert watch.check(ClockReading(103.0, 4600.2, True)) is None


async def test_a_device_whose_clock_disagrees_is_reported(
    tmp_path: Path, emulator: TestServer
) -> None:
    """Test two armbands streaming PPG with their own timestamps, one 30 s ahead of UTC: only
    that one is reported, with the size of the disagreement.
    """
    ppg = {"measurement": "ppg", "sample_rate_hz": 135, "resolution_bits": 22, "channels": 4}
    settings = Settings.model_validate(
        daemon_config(
            tmp_path,
            str(emulator.make_url("")),
            [
                {"model": "armband", "address": "5A:00:00:00:00:01"},
                {"model": "armband", "address": "5A:00:00:00:00:02", "clock_offset_s": 30.0},
            ],
            [
                {"id": "good", "address": "5A:00:00:00:00:01", "pmd": [ppg]},
                {"id": "ahead", "address": "5A:00:00:00:00:02", "pmd": [ppg]},
            ],
            clock={"check_interval_s": 0.05},
        )
    )
    daemon = Daemon(settings)
    runner = asyncio.create_task(daemon.run())
    try:
        await daemon.wait_ready()

        async def reported() -> bool:
            return "ahead" in (await daemon.statistics()).clock_disagreements_s

        await wait_for(reported)
        stats = await daemon.statistics()
    finally:
        daemon.stop()
        await runner
    assert stats.clock_disagreements_s.keys() == {"ahead"}
    assert -31.0 < stats.clock_disagreements_s["ahead"] < -29.0  # our UTC minus theirs
