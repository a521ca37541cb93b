"""Retention under a cap and on a full disk: the order of evictions, with exact counts."""

from __future__ import annotations

import os
import sqlite3
from typing import TYPE_CHECKING

from buffers.outbox import Outbox
from buffers.records import OutboxRecord

if TYPE_CHECKING:
    from pathlib import Path

WANTS = {"s": lambda r: r.kind == "vital"}


def vital(seq: int) -> OutboxRecord:
    return OutboxRecord("vital", "w", "heart_rate", seq, float(seq), b'{"heart_rate_bpm":60}')


def chunk(seq: int, size: int = 4000) -> OutboxRecord:
    # random bytes: incompressible, so pages fill predictably
    return OutboxRecord(
        "waveform", "w", "ppg", seq, float(seq), os.urandom(size), 55.0, "<i4", (size // 4, 1)
    )


def kinds(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as db:
        return dict(db.execute("SELECT kind, COUNT(*) FROM records GROUP BY kind").fetchall())


async def test_cap_evicts_delivered_rows_first_then_oldest_undelivered_waveforms(
    tmp_path: Path,
) -> None:
    """Test the order (delivered, then waveforms) and that every eviction is counted."""
    path = tmp_path / "o.sqlite"
    async with Outbox(path, WANTS, flush_interval_ms=5, max_db_mb=1.0) as outbox:
        for i in range(40):
            await outbox.put(vital(i))
        await outbox.flush()
        delivered = await outbox.lease("s", 20)
        await outbox.ack("s", [r.id for r in delivered])  # 20 vitals delivered, 20 pending
        for i in range(400):  # ~1.6 MB of waveforms nobody delivers: past the 1 MB cap
            await outbox.put(chunk(i))
        await outbox.flush()
        stats = await outbox.statistics()
        remaining = await outbox.lease("s", 100)
    left = kinds(path)
    assert stats.used_bytes <= 1024 * 1024
    assert stats.evicted.get("delivered.vital") == 20  # every delivered row went first
    assert left["vital"] == 20  # no undelivered vital was touched
    assert [r.record.seq for r in remaining] == list(range(20, 40))
    assert stats.evicted["undelivered.waveform"] == 400 - left["waveform"] > 0
    assert stats.evicted_samples == {"undelivered": 1000 * stats.evicted["undelivered.waveform"]}
    with sqlite3.connect(path) as db:
        seqs = [
            row[0]
            for row in db.execute("SELECT seq FROM records WHERE kind = 'waveform' ORDER BY id")
        ]
    assert seqs == list(range(400 - left["waveform"], 400))  # the oldest went


async def test_disk_full_refuses_waveforms_keeps_vitals_and_recovers(tmp_path: Path) -> None:
    """Test SQLITE_FULL (max_page_count): no crash, vitals kept, waveforms counted, recovery."""
    path = tmp_path / "o.sqlite"
    async with Outbox(path, WANTS, flush_interval_ms=5) as outbox:
        for i in range(5):
            await outbox.put(vital(i))
        await outbox.flush()
        used = (await outbox.statistics()).used_bytes
        await outbox.limit_pages(used // 4096 + 60)  # room for ~60 pages more
        seq = 5
        for i in range(200):  # waveforms and vitals interleaved, well past the limit
            await outbox.put(chunk(i))
            await outbox.put(vital(seq))
            seq += 1
        await outbox.flush()
        full = await outbox.statistics()
        assert full.storage_full
        assert full.discarded["storage_full"] > 0
        stored = kinds(path)
        # every vital is there; each waveform is stored, evicted or discarded, all counted
        assert stored["vital"] == seq
        accounted = stored.get("waveform", 0) + full.evicted.get("undelivered.waveform", 0)
        assert accounted + full.discarded["storage_full"] == 200

        await outbox.limit_pages(1_000_000)  # room returns
        await outbox.put(chunk(999))
        await outbox.flush()
        recovered = await outbox.statistics()
    assert not recovered.storage_full
    assert recovered.discarded["storage_full"] == full.discarded["storage_full"]
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*) FROM records WHERE seq = 999").fetchone() == (1,)
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


async def test_undelivered_vitals_in_every_commit_do_not_keep_waveform_files(
    tmp_path: Path,
) -> None:
    """Test the lanes: vitals waiting for a slow sink ride along with every group commit, yet
    the cap is met by evicting waveforms alone (a file goes only once none of its rows is left).
    """
    path = tmp_path / "o.sqlite"
    async with Outbox(path, WANTS, flush_interval_ms=5, max_db_mb=1.0) as outbox:
        for i in range(600):  # ~2.4 MB of waveforms, a vital with each, nothing delivered
            await outbox.put(chunk(i))
            await outbox.put(vital(i))
            if i % 10 == 9:
                await outbox.flush()  # 60 group commits, each with both kinds
        await outbox.flush()
        stats = await outbox.statistics()
        remaining = await outbox.lease("s", 1000)
    assert stats.used_bytes <= 1024 * 1024
    assert "undelivered.vital" not in stats.evicted
    assert [r.record.seq for r in remaining] == list(range(600))
    assert stats.evicted["undelivered.waveform"] == 600 - kinds(path)["waveform"] > 300
    assert {p.suffix for p in (tmp_path / "o.sqlite.segments").iterdir()} == {".seg", ".vseg"}


def reading(device: str, seq: int) -> OutboxRecord:
    """A timestamped reading (a source key, as a backfilled blood pressure has)."""
    return OutboxRecord(
        "vital", device, "heart_rate", seq, float(seq), b'{"heart_rate_bpm":60}',
        source_key=f"{device}-{seq}",
    )  # fmt: skip


def table_counts(path: Path) -> tuple[int, int, int]:
    """Source keys, contexts, and contexts no row uses."""
    with sqlite3.connect(path) as db:
        keys = db.execute("SELECT COUNT(*) FROM source_keys").fetchone()[0]
        contexts = db.execute("SELECT COUNT(*) FROM contexts").fetchone()[0]
        unused = db.execute(
            "SELECT COUNT(*) FROM contexts WHERE id NOT IN (SELECT ctx FROM items)"
        ).fetchone()[0]
    return keys, contexts, unused


async def test_what_only_named_evicted_rows_goes_with_them(tmp_path: Path) -> None:
    """Test that source keys and contexts do not outgrow the rows they name (issue 21)."""
    path = tmp_path / "o.sqlite"
    async with Outbox(path, WANTS, flush_interval_ms=5, max_db_mb=1.0) as outbox:
        for device in ("a", "b", "c"):  # a context each
            for i in range(10):
                await outbox.put(reading(device, i))
        await outbox.flush()
        delivered = await outbox.lease("s", 30)
        await outbox.ack("s", [r.id for r in delivered])
        for i in range(400):  # past the cap: the delivered readings go first
            await outbox.put(chunk(i))
        await outbox.flush()
        stats = await outbox.statistics()
        assert stats.evicted.get("delivered.vital") == 30
        await outbox.put(reading("a", 10))  # a context of its own again, not a forgotten one
        await outbox.put(reading("a", 3))  # its key went with its row: a new reading now
        await outbox.flush()
        fresh = await outbox.lease("s", 10)
    assert [(r.record.device_id, r.record.seq) for r in fresh] == [("a", 10), ("a", 3)]
    keys, contexts, unused = table_counts(path)
    assert (keys, unused) == (2, 0)
    assert contexts == 2  # the waveforms' and the new readings'
    assert kinds(path)["vital"] == 2


async def test_the_wal_shrinks_back_after_a_large_transaction(tmp_path: Path) -> None:
    """Test that one large index commit does not leave its WAL's size on the disk for good.

    SQLite reuses a WAL file without shrinking it; in the soak an eviction left 15 MB of WAL
    beside a 40 MB cap. With a journal size limit it is truncated after the next checkpoint.
    """
    path = tmp_path / "o.sqlite"
    wal = tmp_path / "o.sqlite-wal"
    async with Outbox(path, WANTS, flush_interval_ms=50) as outbox:
        for i in range(100_000):  # one index commit of some 6 MB of pages
            await outbox.put(vital(i))
        await outbox.flush()
        assert wal.stat().st_size > 5 * 2**20
        for i in range(2):  # the next commits: a checkpoint, then a write that resets the WAL
            await outbox.put(vital(100_000 + i))
            await outbox.flush()
        assert wal.stat().st_size <= 4 * 2**20
