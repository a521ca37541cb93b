"""Opening old and broken files: forward migrations from schemas 1 and 2, corrupt files aside."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

import numpy as np
import pytest

from buffers import schema
from buffers.outbox import Outbox
from buffers.records import ClockStamp, OutboxRecord

if TYPE_CHECKING:
    from pathlib import Path

WANTS_ALL = {"s": lambda r: True}


def write_schema_1(path: Path) -> None:
    """A database exactly as the walking skeleton (schema 1) wrote it, with two rows."""
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript(schema.MIGRATIONS[0])
    db.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    db.execute(
        "INSERT INTO records (id, kind, device_id, stream, seq, t0_s, payload, stored_s)"
        " VALUES (1, 'vital', 'w', 'heart_rate', 0, 1.0, x'7b7d', 1.0),"
        " (2, 'vital', 'w', 'heart_rate', 1, 2.0, x'7b7d', 2.0)"
    )
    db.execute("INSERT INTO pending (sink, record_id) VALUES ('s', 2)")
    db.close()


async def test_a_schema_1_database_is_migrated_and_keeps_its_backlog(tmp_path: Path) -> None:
    """Test that opening a v1 file migrates it to the current version with rows and backlog."""
    path = tmp_path / "old.sqlite"
    write_schema_1(path)
    async with Outbox(path, WANTS_ALL, flush_interval_ms=10) as outbox:
        assert outbox.opened is not None
        assert (outbox.opened.migrated_from, outbox.opened.migrated_to) == (
            1,
            schema.SCHEMA_VERSION,
        )
        leased = await outbox.lease("s", 10)
        assert [r.record.seq for r in leased] == [1]
        assert leased[0].record.encoding == "raw"
        await outbox.put(OutboxRecord("vital", "w", "heart_rate", 2, 3.0, b"{}"))
        await outbox.flush()
        stats = await outbox.statistics()
    assert stats.total_rows == 3
    assert stats.backlog["s"].pending == 2
    with sqlite3.connect(path) as db:
        assert schema.version(db) == schema.SCHEMA_VERSION
        assert db.execute("SELECT size FROM records WHERE id = 1").fetchone() == (2,)


async def test_a_schema_2_database_gains_clock_trust_and_its_old_rows_stay_put(
    tmp_path: Path,
) -> None:
    """Test v2 -> v3: old rows carry no clock stamp, so a clock correction leaves them alone,
    while this boot's untrusted rows move and the event is recorded.
    """
    path = tmp_path / "v2.sqlite"
    write_schema_1(path)
    db = sqlite3.connect(path, isolation_level=None)
    for statement in schema.MIGRATIONS[1].split(";"):
        if statement.strip():
            db.execute(statement)
    db.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    db.close()
    stamp = ClockStamp("boot-a", -3600.0, False)
    async with Outbox(path, WANTS_ALL, flush_interval_ms=10) as outbox:
        assert outbox.opened is not None
        assert outbox.opened.migrated_from == 2
        await outbox.put(OutboxRecord("vital", "w", "heart_rate", 2, 100.0, b"{}", clock=stamp))
        moved = await outbox.correct_clock(
            "boot-a", 0.0, at_mono_s=50.0, offset_before_s=-3600.0, synced=True
        )
    assert moved == 1
    with sqlite3.connect(path) as db:
        times = db.execute("SELECT id, t0_s, clock_corrected_s FROM records ORDER BY id").fetchall()
        events = db.execute("SELECT rows_corrected, synced FROM clock_events").fetchall()
    assert times == [(1, 1.0, 0.0), (2, 2.0, 0.0), (3, 3700.0, 3600.0)]
    assert events == [(1, 1)]


async def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    """Test that a file from a newer gateway is not touched."""
    path = tmp_path / "new.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        db.execute("INSERT INTO meta VALUES ('schema_version', '99')")
    with pytest.raises(RuntimeError, match="newer"):
        async with Outbox(path, WANTS_ALL):
            pass


async def test_a_corrupt_file_is_moved_aside_and_a_fresh_one_used(tmp_path: Path) -> None:
    """Test that garbage in place of the database does not stop the outbox from opening."""
    path = tmp_path / "wgw.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    async with Outbox(path, WANTS_ALL, flush_interval_ms=10) as outbox:
        assert outbox.opened is not None
        moved = outbox.opened.moved_aside_to
        assert moved is not None
        assert moved.read_bytes().startswith(b"this is not a database")
        await outbox.put(OutboxRecord("vital", "w", "heart_rate", 0, 1.0, b"{}"))
        await outbox.flush()
        stats = await outbox.statistics()
    assert stats.total_rows == 1
    assert stats.corrupt_recoveries == 1
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


async def test_a_schema_4_database_moves_into_contexts_and_items(tmp_path: Path) -> None:
    """Test v4 -> v5: rows keep their fields and inline payloads, share contexts, and a clock
    correction still moves the untrusted ones.
    """
    path = tmp_path / "v4.sqlite"
    db = sqlite3.connect(path, isolation_level=None)
    for migration in schema.MIGRATIONS[:4]:
        db.executescript(migration)
    db.execute("INSERT INTO meta VALUES ('schema_version', '4')")
    db.executemany(
        "INSERT INTO records (id, kind, device_id, stream, seq, t0_s, sample_rate_hz, dtype,"
        " shape, payload, stored_s, encoding, size, sinks, boot_id, clock_offset_s,"
        " clock_synced, participant_id, session_id)"
        " VALUES (?, ?, 'w', ?, ?, ?, ?, ?, ?, ?, 1.0, 'raw', ?, 1, 'boot-b', -10.0, 0, 'P1', 7)",
        [
            (1, "vital", "heart_rate", 0, 100.0, None, None, None, b'{"a":1}', 7),
            (2, "waveform", "ecg", 0, 100.5, 130.0, "<i4", "[2, 1]", bytes(8), 8),
            (3, "vital", "heart_rate", 1, 101.0, None, None, None, b'{"a":2}', 7),
        ],
    )
    db.executemany("INSERT INTO pending (sink, record_id) VALUES ('s', ?)", [(1,), (2,), (3,)])
    db.close()
    async with Outbox(path, WANTS_ALL, flush_interval_ms=10) as outbox:
        leased = await outbox.lease("s", 10)
        moved = await outbox.correct_clock(
            "boot-b", 0.0, at_mono_s=5.0, offset_before_s=-10.0, synced=True
        )
    assert [r.record.payload for r in leased] == [b'{"a":1}', bytes(8), b'{"a":2}']
    assert leased[1].record.shape == (2, 1) and leased[1].record.participant_id == "P1"
    assert moved == 3
    with sqlite3.connect(path) as db:
        assert db.execute(
            "SELECT COUNT(*) FROM contexts WHERE clock_offset_s = -10"
        ).fetchone() == (2,)
        assert db.execute("SELECT t0_s, clock_corrected_s FROM records ORDER BY id").fetchall() == [
            (110.0, 10.0),
            (110.5, 10.0),
            (111.0, 10.0),
        ]


async def test_where_each_stream_ends_is_found_in_old_rows_and_kept_by_new_ones(
    tmp_path: Path,
) -> None:
    """Test v6 -> v7 and after: a device's streams' stored ends (a reading at its time, a
    waveform after its last sample), found from the rows at migration, then moved by writes
    (never back by an older row)."""
    path = tmp_path / "v1.sqlite"
    write_schema_1(path)  # heart rate readings at 1.0 and 2.0
    async with Outbox(path, WANTS_ALL, flush_interval_ms=10) as outbox:
        assert await outbox.stream_ends("w") == {"heart_rate": 2.0}
        chunk = np.zeros((65, 1), np.int32).tobytes()
        await outbox.put(
            OutboxRecord(
                "waveform", "w", "ecg", 0, 10.0, chunk, sample_rate_hz=130.0, shape=(65, 1)
            )
        )
        await outbox.put(OutboxRecord("vital", "w", "heart_rate", 2, 1.5, b"{}"))  # late
        await outbox.put(OutboxRecord("gap", "w", "heart_rate", 0, 50.0, b"{}"))
        await outbox.flush()
        assert await outbox.stream_ends("w") == {"heart_rate": 2.0, "ecg": 10.5}
        assert await outbox.stream_ends("other") == {}
