"""Opening the database file at start: integrity check, a corrupt index set aside, migrations.

Runs once, synchronously, before the event loop's writer starts: a quick check of a large file
on an SD card takes a while, and nothing may be written before it is known to be sound.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from buffers import schema
from buffers.segments import fsync_folder, make_folder

if TYPE_CHECKING:
    from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OpenReport:
    """What happened to the file at start."""

    moved_aside_to: Path | None
    migrated_from: int
    migrated_to: int


def prepare(path: Path) -> OpenReport:
    """Check ``path``; move it aside if corrupt (the daemon still starts); migrate it.

    Only the index is moved: the segment log beside it holds every record's fields and
    payload, and the outbox rebuilds a fresh index from it (sinks then see every retained
    row again: at least once). What lives only in the index (acks since the last index
    commit, counters, the study's assignments, sessions and markers) stays in the moved file.
    """
    make_folder(path.parent)
    moved: Path | None = None
    if path.exists() and not _sound(path):
        moved = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}")
        path.rename(moved)
        for suffix in ("-wal", "-shm"):
            side = path.with_name(path.name + suffix)
            if side.exists():
                side.rename(moved.with_name(moved.name + suffix))
        fsync_folder(path.parent)
        log.error(
            "database %s failed its integrity check; moved aside to %s, the index is rebuilt"
            " from the segment log",
            path,
            moved,
        )
    created = not path.exists()
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        before, after = schema.migrate(db)
        if created:  # SQLite syncs the file, never the folder that names it
            fsync_folder(path.parent)
        if moved is not None:
            db.execute(
                "INSERT INTO counters (name, value) VALUES ('corrupt_recoveries', 1)"
                " ON CONFLICT (name) DO UPDATE SET value = value + 1"
            )
    finally:
        db.close()
    if before and before < after:
        log.info("database %s migrated from schema %d to %d", path, before, after)
    return OpenReport(moved, before, after)


def _sound(path: Path) -> bool:
    try:
        db = sqlite3.connect(f"file:{path}?mode=rw", uri=True)
        try:
            rows = db.execute("PRAGMA quick_check").fetchall()
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        log.error("database %s cannot be read: %s", path, exc)
        return False
    return rows == [("ok",)]
