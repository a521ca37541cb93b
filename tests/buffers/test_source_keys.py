"""Backfill in the outbox: a reading kept once per source key, the cursor of the newest record,
the backfilled mark, all of it rebuilt from the segment log after a crash.
"""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

from buffers.outbox import Outbox
from buffers.records import OutboxRecord
from buffers.segments import folder_for

if TYPE_CHECKING:
    from pathlib import Path

SUBSCRIPTIONS = {"s": lambda r: True}


def pressure(
    minute: int, *, backfilled: bool = False, record: int | None = None, device: str = "cuff"
) -> OutboxRecord:
    """A blood pressure reading the cuff stamped ``minute`` minutes past eight."""
    return OutboxRecord(
        "vital",
        device,
        "blood_pressure",
        minute,
        1_795_392_000.0 + 60 * minute,
        b'{"systolic":120.0}',
        backfilled=backfilled,
        source_key=f"2026-11-23T08:{minute:02d}:00",
        source_cursor=record,
    )


async def test_a_reading_fetched_again_is_kept_once_and_moves_the_cursor(tmp_path: Path) -> None:
    """Test duplicates across commits and within one, counted; the cursor follows them."""
    path = tmp_path / "o.sqlite"
    async with Outbox(path, SUBSCRIPTIONS, flush_interval_ms=10) as outbox:
        assert await outbox.cursor("cuff", "blood_pressure") is None
        for minute in (0, 1, 2):  # live: no record numbers
            await outbox.put(pressure(minute))
        await outbox.flush()
        # the transfer after a gap: records 10..14 are minutes 0..4; 0..2 came live
        for record, minute in enumerate(range(5), start=10):
            await outbox.put(pressure(minute, backfilled=True, record=record))
        await outbox.put(pressure(4, backfilled=True, record=14))  # the same record, again
        await outbox.flush()
        rows = await outbox.lease("s", 100)
        stats = await outbox.statistics()
        assert await outbox.cursor("cuff", "blood_pressure") == 14
        assert await outbox.cursor("other", "blood_pressure") is None
    keys = [r.record.t0_s for r in rows]
    assert keys == sorted(set(keys)) and len(rows) == 5
    assert [r.record.backfilled for r in rows] == [False, False, False, True, True]
    assert stats.duplicates == 4
    async with Outbox(path, SUBSCRIPTIONS) as outbox:  # the cursor and the keys are durable
        assert await outbox.cursor("cuff", "blood_pressure") == 14
        await outbox.put(pressure(3, backfilled=True, record=13))
        await outbox.flush()
        assert (await outbox.statistics()).duplicates == 1
        assert await outbox.cursor("cuff", "blood_pressure") == 13  # the last one named


async def test_keys_are_per_device_and_stream(tmp_path: Path) -> None:
    """Test that the same timestamp on two devices is two readings."""
    async with Outbox(tmp_path / "o.sqlite", SUBSCRIPTIONS, flush_interval_ms=10) as outbox:
        await outbox.put(pressure(0, device="a"))
        await outbox.put(pressure(0, device="b"))
        await outbox.flush()
        assert len(await outbox.lease("s", 10)) == 2


async def test_keys_cursor_and_mark_come_back_from_the_log_after_a_crash(tmp_path: Path) -> None:
    """Test the files as a crash leaves them (rows in the log, the index not committed)."""
    path = tmp_path / "o.sqlite"
    crashed = tmp_path / "crashed"
    crashed.mkdir()
    async with Outbox(path, SUBSCRIPTIONS, flush_interval_ms=10, index_interval_s=600) as outbox:
        await outbox.put(pressure(0))
        await outbox.flush()  # the index holds this one
        await outbox.put(pressure(1, backfilled=True, record=7))
        await outbox.flush(index=False)  # this one only the log holds
        for name in (path.name, path.name + "-wal"):
            if (tmp_path / name).exists():
                shutil.copy2(tmp_path / name, crashed / name)
        shutil.copytree(folder_for(path), folder_for(crashed / path.name))
    async with Outbox(crashed / path.name, SUBSCRIPTIONS) as outbox:
        assert outbox.replayed == 1
        assert await outbox.cursor("cuff", "blood_pressure") == 7
        rows = await outbox.lease("s", 10)
        assert [r.record.backfilled for r in rows] == [False, True]
        await outbox.put(pressure(1, backfilled=True, record=7))  # fetched again after restart
        await outbox.flush()
        assert (await outbox.statistics()).duplicates == 1
