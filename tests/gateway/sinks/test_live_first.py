"""Live first: after an outage, new readings flow on a live lane while a backfill lane drains."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from gateway.codec import iso_utc
from gateway.config import Settings
from gateway.daemon import Daemon
from gateway.emulator.app import STATE_KEY
from tests.support import daemon_config, wait_for

if TYPE_CHECKING:
    from pathlib import Path

    from aiohttp.test_utils import TestServer

    from drivers.sim.devices import SimDevice


async def test_after_an_outage_live_readings_overtake_the_backlog_and_none_is_lost(
    tmp_path: Path, emulator: TestServer
) -> None:
    """Test a 10 s outage: afterwards live readings reach the server while the backlog is still
    draining (live first), and in the end every reading is there exactly once.
    """
    raw = daemon_config(
        tmp_path,
        str(emulator.make_url("")),
        [{"model": "strap", "address": "5A:00:00:00:00:01", "heart_rate_interval_ms": 50}],
        [{"id": "s1", "address": "5A:00:00:00:00:01"}],
        cloud={"tcm": {"rate_limit_scale": 0.01}},
        sync={
            "record_interval_s": 0,
            "record_grace_s": 0.2,
            "batch_max_records": 40,  # two seconds of readings per request
            "min_request_interval_s": 0.25,
            "retry_min_s": 0.2,
            "retry_max_s": 1.0,
            "backfill_after_s": 2.0,
            "backfill_share": 0.5,
        },
    )
    settings = Settings.model_validate(raw)
    state = emulator.app[STATE_KEY]
    daemon = Daemon(settings)
    assert daemon.sim_world is not None
    strap: SimDevice = daemon.sim_world.peripherals["5A:00:00:00:00:01"]  # type: ignore[assignment]
    runner = asyncio.create_task(daemon.run())
    saw_backfill = False

    async def backfilling() -> bool:
        nonlocal saw_backfill
        saw_backfill |= (await daemon.statistics()).health_upload.backfilling
        return saw_backfill

    try:
        await daemon.wait_ready()
        await wait_for(lambda: state.uploads >= 2)
        state.faults.update({"outage_s": 10, "outage_mode": "drop"})
        outage_end = state.faults.outage_until
        await asyncio.sleep(outage_end - time.time())
        await wait_for(backfilling, timeout_s=10)

        async def done() -> bool:
            return not (await daemon.statistics()).health_upload.backfilling

        await wait_for(done, timeout_s=30)
        strap.stop()
        sent = strap.counters["heart_rate"].values_sent
        await wait_for(lambda: len(state.records["s1"]) == len(sent), timeout_s=20)
    finally:
        daemon.stop()
        await runner
    stats = (await daemon.statistics()).health_upload
    records = state.records["s1"]
    by_time = sorted(records, key=lambda r: r["timestamp"])
    assert [r["heart_rate"] for r in by_time] == sent  # every reading, once
    assert state.duplicates["s1"] == 0
    assert stats.backfills == 1
    assert set(state.records_by_type) == {"realtime/incremental", "batch/incremental"}
    # live first: a reading taken after the outage arrived before the backlog had drained
    after = iso_utc(outage_end + 1.0)
    backlog = iso_utc(outage_end - 1.0)
    first_live = next(i for i, r in enumerate(records) if r["timestamp"] > after)
    last_backlog = max(i for i, r in enumerate(records) if r["timestamp"] < backlog)
    assert first_live < last_backlog
