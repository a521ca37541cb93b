"""The SQLite outbox on a real file: group commit, per-sink backlog, ordering, restart."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from typing import TYPE_CHECKING

import pytest

from buffers.errors import StorageError
from buffers.outbox import Outbox
from buffers.records import OutboxRecord, StoredRecord
from tests.support import wait_for

if TYPE_CHECKING:
    from pathlib import Path

SUBSCRIPTIONS = {
    "a": lambda r: r.stream == "heart_rate",
    "b": lambda r: r.stream in {"heart_rate", "ppg"},
}


def vital(seq: int, device: str = "d1") -> OutboxRecord:
    return OutboxRecord("vital", device, "heart_rate", seq, 1_700_000_000.0 + seq, b'{"bpm":60}')


def chunk(seq: int) -> OutboxRecord:
    return OutboxRecord(
        "waveform", "d1", "ppg", seq, 1.0, bytes(16), sample_rate_hz=55.0, dtype="<i4", shape=(4, 1)
    )


def count_rows(path: Path) -> int:
    with sqlite3.connect(path) as db:
        (n,) = db.execute("SELECT COUNT(*) FROM records").fetchone()
        return int(n)


async def test_records_are_committed_in_groups_within_the_interval(tmp_path: Path) -> None:
    """Test that 50 puts become few group commits, durable in the segment log within the flush
    interval and visible to other connections once the index commits.
    """
    path = tmp_path / "o.sqlite"
    async with Outbox(path, SUBSCRIPTIONS, flush_interval_ms=50, index_interval_s=0.5) as outbox:
        for i in range(50):
            await outbox.put(vital(i))
        await outbox.wait_committed(timeout_s=1.0)
        stats = await outbox.statistics()
        assert stats.committed == 50
        assert stats.commits <= 2
        assert len(await outbox.lease("a", 100)) == 50  # the outbox's own reads see them now
        assert count_rows(path) == 0  # the index has not committed yet
        await wait_for(lambda: count_rows(path) == 50, timeout_s=3)  # without another put


async def test_close_commits_everything_accepted(tmp_path: Path) -> None:
    """Test that leaving the context commits what the long flush interval still held."""
    path = tmp_path / "o.sqlite"
    async with Outbox(path, SUBSCRIPTIONS, flush_interval_ms=60_000) as outbox:
        for i in range(10):
            await outbox.put(vital(i))
        assert count_rows(path) == 0
    assert count_rows(path) == 10


async def test_each_sink_has_its_own_backlog_by_stream(tmp_path: Path) -> None:
    """Test that sinks see only their streams and acking for one leaves the other's backlog."""
    async with Outbox(tmp_path / "o.sqlite", SUBSCRIPTIONS, flush_interval_ms=10) as outbox:
        await outbox.put(vital(0))
        await outbox.put(chunk(0))
        await outbox.flush()
        a = await outbox.lease("a", 10)
        b = await outbox.lease("b", 10)
        assert [r.record.stream for r in a] == ["heart_rate"]
        assert [r.record.stream for r in b] == ["heart_rate", "ppg"]
        await outbox.ack("a", [r.id for r in a])
        await outbox.flush()  # acks ride on the next group commit
        stats = await outbox.statistics()
        assert stats.backlog["a"].pending == 0
        assert stats.backlog["b"].pending == 2
        assert await outbox.lease("a", 10) == []


async def test_nacked_rows_block_later_rows_until_their_retry_time(tmp_path: Path) -> None:
    """Test that a row waiting for a retry holds back the rows after it (order per sink)."""
    async with Outbox(tmp_path / "o.sqlite", SUBSCRIPTIONS, flush_interval_ms=10) as outbox:
        for i in range(3):
            await outbox.put(vital(i))
        await outbox.flush()
        first = await outbox.lease("a", 1)
        await outbox.nack("a", [first[0].id], time.time() + 0.3, "503")
        assert await outbox.lease("a", 10) == []
        again: list[StoredRecord] = []

        async def offered() -> bool:
            again.extend(await outbox.lease("a", 10))
            return bool(again)

        await wait_for(offered, timeout_s=2)
        assert [r.record.seq for r in again] == [0, 1, 2]


async def test_dead_letters_are_parked_and_counted(tmp_path: Path) -> None:
    """Test that a dead-lettered row is no longer offered and is counted."""
    async with Outbox(tmp_path / "o.sqlite", SUBSCRIPTIONS, flush_interval_ms=10) as outbox:
        await outbox.put(vital(0))
        await outbox.put(vital(1))
        await outbox.flush()
        rows = await outbox.lease("a", 1)
        await outbox.dead_letter("a", [rows[0].id], "400 INVALID_PARAMETER")
        assert [r.record.seq for r in await outbox.lease("a", 10)] == [1]
        assert (await outbox.statistics()).backlog["a"].dead_letters == 1


async def test_unacked_leases_are_offered_again_after_restart(tmp_path: Path) -> None:
    """Test at-least-once: rows leased but never acked come back after reopening; acked never."""
    path = tmp_path / "o.sqlite"
    async with Outbox(path, SUBSCRIPTIONS, flush_interval_ms=10) as outbox:
        for i in range(4):
            await outbox.put(vital(i))
        await outbox.flush()
        rows = await outbox.lease("a", 4)
        await outbox.ack("a", [rows[0].id])
        assert await outbox.lease("a", 4) == []  # leased in this process
    async with Outbox(path, SUBSCRIPTIONS, flush_interval_ms=10) as outbox:
        assert [r.record.seq for r in await outbox.lease("a", 10)] == [1, 2, 3]
        await outbox.put(vital(4))
        await outbox.flush()
        assert [r.record.seq for r in await outbox.lease("a", 10)] == [4]


async def test_a_peek_takes_nothing(tmp_path: Path) -> None:
    """Test a peek: what a lease would hand out, still there for the lease, and in-flight rows
    skipped as a lease skips them.
    """
    async with Outbox(tmp_path / "o.sqlite", SUBSCRIPTIONS, flush_interval_ms=10) as outbox:
        for i in range(5):
            await outbox.put(vital(i))
        await outbox.flush()
        assert [r.record.seq for r in await outbox.peek("a", 3)] == [0, 1, 2]
        leased = await outbox.lease("a", 2)
        assert [r.record.seq for r in leased] == [0, 1]
        assert [r.record.seq for r in await outbox.peek("a", 10)] == [2, 3, 4]
        assert [r.record.seq for r in await outbox.lease("a", 10)] == [2, 3, 4]


async def test_put_after_close_raises_storage_error(tmp_path: Path) -> None:
    """Test that a closed outbox refuses records loudly instead of losing them."""
    outbox = Outbox(tmp_path / "o.sqlite", SUBSCRIPTIONS)
    async with outbox:
        pass
    with pytest.raises(StorageError):
        await outbox.put(vital(0))


async def test_full_queue_applies_back_pressure_and_counts_it(tmp_path: Path) -> None:
    """Test that puts beyond the queue bound wait (counted) and nothing is dropped."""
    async with Outbox(
        tmp_path / "o.sqlite",
        SUBSCRIPTIONS,
        flush_interval_ms=5,
        queue_max_rows=2,
        flush_max_rows=2,
    ) as outbox:
        await asyncio.gather(*(outbox.put(vital(i)) for i in range(20)))
        await outbox.flush()
        stats = await outbox.statistics()
    assert stats.total_rows == 20
    assert stats.backpressure_waits > 0


async def test_two_lanes_lease_their_own_ranges_without_skipping_each_other(
    tmp_path: Path,
) -> None:
    """Test a backfill lane from the oldest and a live lane after id 60, interleaved."""
    async with Outbox(tmp_path / "o.sqlite", SUBSCRIPTIONS, flush_interval_ms=5) as outbox:
        for i in range(100):
            await outbox.put(vital(i))
        await outbox.flush()
        assert outbox.last_id == 100
        assert await outbox.first_pending_since("a", 1_700_000_060.0) == 61  # seq 60 is id 61
        backfill: list[int] = []
        live: list[int] = []
        while len(backfill) + len(live) < 100:
            rows = await outbox.lease("a", 10, after_id=60)
            live += [r.record.seq for r in rows]
            await outbox.ack("a", [r.id for r in rows])
            rows = await outbox.lease("a", 10)
            own = [r for r in rows if r.id <= 60]
            await outbox.release("a", [r.id for r in rows if r.id > 60])
            backfill += [r.record.seq for r in own]
            await outbox.ack("a", [r.id for r in own])
            await outbox.flush()
        assert not await outbox.has_pending_before("a", 1e12)
        assert await outbox.has_pending_before("b", 1_700_000_001.0)
    assert backfill == list(range(60))
    assert live == list(range(60, 100))
