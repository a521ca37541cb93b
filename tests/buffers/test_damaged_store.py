"""A store as power cuts leave it: segment files empty, zero-filled or torn, a corrupt index, a
vitals-only store under a cap; each opens, keeps what is readable and says what it set aside.
"""

from __future__ import annotations

import contextlib
import sqlite3
from typing import TYPE_CHECKING

import pytest

from buffers.outbox import Outbox
from buffers.records import OutboxRecord
from buffers.segments import SegmentLog, folder_for

if TYPE_CHECKING:
    from pathlib import Path

WANTS_ALL = {"mqtt": lambda r: True, "upload": lambda r: True}


def vital(seq: int, size: int = 20) -> OutboxRecord:
    return OutboxRecord("vital", "strap", "heart_rate", seq, 1.8e9 + seq, b"v" * size)


def chunk(seq: int) -> OutboxRecord:
    return OutboxRecord(
        "waveform", "strap", "ecg", seq, 1.8e9 + seq, b"w" * 400, 130.0, "<i4", (100, 1)
    )


async def store(path: Path, records: list[OutboxRecord]) -> None:
    async with Outbox(path, WANTS_ALL, flush_interval_ms=5) as outbox:
        for r in records:
            await outbox.put(r)
        await outbox.flush()


async def every_row_reads(outbox: Outbox) -> list[int]:
    """Every sink leases every row and reads its payload; the seqs, in order."""
    seqs: list[list[int]] = []
    for sink in WANTS_ALL:
        rows = await outbox.lease(sink, 100_000)
        assert all(r.record.payload for r in rows)
        seqs.append([r.record.seq for r in rows])
    history = await outbox.history(lambda r: True, 0, 100_000)
    assert [r.record.seq for r in history] == seqs[0]
    assert seqs[0] == seqs[1]
    return seqs[0]


@pytest.mark.parametrize("content", [b"", b"\0" * 4096, b"WGWSEG"], ids=["empty", "zeros", "short"])
async def test_a_new_segment_file_that_came_back_unreadable_is_set_aside(
    tmp_path: Path, content: bytes
) -> None:
    """Test that a cut's empty, zero-filled or half-headed newest file no longer stops the open."""
    path = tmp_path / "wgw.sqlite"
    await store(path, [vital(i) for i in range(5)])
    log = SegmentLog(folder_for(path))
    newest = log.numbers()[-1]
    log.close()
    (folder_for(path) / f"{newest + 1:08d}.vseg").write_bytes(content)
    async with Outbox(path, WANTS_ALL, flush_interval_ms=5) as outbox:
        assert await every_row_reads(outbox) == list(range(5))
        await outbox.put(vital(5))
        await outbox.flush()
        stats = await outbox.statistics()
    assert [(s.name, s.bytes) for s in stats.set_aside] == [
        (f"{newest + 1:08d}.vseg", len(content))
    ]
    assert stats.set_aside_files == 1
    assert stats.total_rows == 6
    assert len(list((folder_for(path) / "damaged").iterdir())) == 1


async def test_a_torn_batch_beyond_the_index_is_cut_off_and_counted(tmp_path: Path) -> None:
    """Test that the rows of a batch torn by a cut go, counted; those before it replay."""
    path = tmp_path / "wgw.sqlite"
    (tmp_path / "cut").mkdir()
    cut = tmp_path / "cut" / "wgw.sqlite"
    async with Outbox(path, WANTS_ALL, flush_interval_ms=5, index_interval_s=3600) as outbox:
        for i in range(3):
            await outbox.put(vital(i))
        await outbox.flush(index=True)
        with sqlite3.connect(path) as src, sqlite3.connect(cut) as dst:
            src.backup(dst)  # the index as the cut leaves it: three rows
        for i in range(3, 6):
            await outbox.put(vital(i))
            await outbox.flush(index=False)
        seg = sorted(folder_for(path).glob("*.vseg"))[-1]
        whole = seg.read_bytes()
    folder_for(cut).mkdir()
    (folder_for(cut) / seg.name).write_bytes(whole[:-5])  # the last batch torn
    async with Outbox(cut, WANTS_ALL, flush_interval_ms=5) as outbox:
        assert await every_row_reads(outbox) == [0, 1, 2, 3, 4]
        stats = await outbox.statistics()
        assert outbox.replayed == 2
    assert [s.reason for s in stats.set_aside] == ["a torn batch at the end, cut off"]


async def test_a_corrupt_index_is_rebuilt_from_the_log(tmp_path: Path) -> None:
    """Test that garbage in place of the index keeps the log: every row comes back."""
    path = tmp_path / "wgw.sqlite"
    await store(path, [vital(i) for i in range(50)] + [chunk(i) for i in range(50, 60)])
    path.write_bytes(b"not a database" * 500)
    path.with_name(path.name + "-wal").unlink(missing_ok=True)
    async with Outbox(path, WANTS_ALL, flush_interval_ms=5) as outbox:
        assert await every_row_reads(outbox) == list(range(60))
        stats = await outbox.statistics()
    assert stats.index_rebuilt_from is not None
    assert stats.corrupt_recoveries == 1
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


async def test_evicted_rows_stay_gone_after_a_crash_replays_the_log(tmp_path: Path) -> None:
    """Test that a replay starts past the newest id the index held, not its newest row."""
    path = tmp_path / "wgw.sqlite"
    async with Outbox(path, {"s": lambda r: True}, flush_interval_ms=5) as outbox:
        for i in range(10):
            await outbox.put(vital(i))
        await outbox.flush()
        rows = await outbox.lease("s", 100)
        await outbox.ack("s", [r.id for r in rows])
        await outbox.flush()
    with contextlib.closing(sqlite3.connect(path)) as db:  # what retention does to delivered rows
        db.execute("DELETE FROM items")
        db.commit()
    async with Outbox(path, {"s": lambda r: True}) as outbox:
        assert outbox.replayed == 0
        assert (await outbox.statistics()).total_rows == 0


async def test_a_vitals_only_store_under_a_cap_keeps_its_writer(tmp_path: Path) -> None:
    """Test 3,000 vitals of 1 KB under a 1 MB cap: eviction with one empty lane, no crash."""
    path = tmp_path / "wgw.sqlite"
    async with Outbox(path, {"s": lambda r: True}, flush_interval_ms=5, max_db_mb=1) as outbox:
        for i in range(3000):
            await outbox.put(vital(i, 1024))
            if i % 100 == 99:
                await outbox.flush()
                rows = await outbox.lease("s", 100)
                await outbox.ack("s", [r.id for r in rows])
        await outbox.flush()
        stats = await outbox.statistics()
    assert stats.evicted.get("delivered.vital", 0) > 1000
    assert stats.used_bytes < 1.2 * 1024 * 1024
