"""The frame pipeline's live consumers: live readings before they are stored, and readings
fetched from a device's memory only to the consumers that asked for them (LSL's backfill)."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from buffers.outbox import Outbox
from drivers.frames import VitalReading
from gateway.clock_keeper import ClockKeeper
from gateway.config import ClockConfig
from gateway.frame_pipeline import FramePipeline
from gateway.study import StudyContext
from gateway.wallclock import ShiftedClock

if TYPE_CHECKING:
    from pathlib import Path

    from gateway.readings import Reading


async def test_backfilled_readings_go_only_to_the_consumers_that_asked(tmp_path: Path) -> None:
    clock = ClockKeeper(ShiftedClock(time.monotonic, offset_s=1_000.0), ClockConfig())
    pipeline = FramePipeline(clock)
    live: list[Reading] = []
    everything: list[Reading] = []
    pipeline.live(live.append)
    pipeline.live(everything.append, backfilled=True)
    async with Outbox(tmp_path / "wgw.sqlite", {}) as outbox:
        study = StudyContext(outbox, now=clock.utc_now, stamp=clock.stamp)
        running = asyncio.create_task(pipeline.run(outbox, study))
        await pipeline.put(VitalReading("d", "heart_rate", 0, 5.0, {"heart_rate_bpm": 60}))
        await pipeline.put(
            VitalReading("d", "blood_pressure", 0, 2.0, {"systolic": 120.0}, backfilled=True)
        )
        await pipeline.finish()
        await running
    assert [r.frame.stream for r in live] == ["heart_rate"]
    assert [r.frame.stream for r in everything] == ["heart_rate", "blood_pressure"]
    assert everything[1].frame.t0_s == 1_002.0  # in UTC, at its own (past) time
    assert pipeline.stored == 2
