"""Reading and repairing the outbox file from outside the daemon (``wgw queue``, ``wgw plot``).

Uses its own short-lived connection: WAL lets it read while the daemon writes, and the one
write it does (re-queueing dead letters) waits for the daemon's transactions (busy timeout).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from buffers import schema
from buffers.backfill_report import (
    BACKFILLED_SQL,
    CURSORS_SQL,
    GAPS_SQL,
    DeviceBackfill,
    summarize,
)
from buffers.records import OutboxRecord
from buffers.segments import SegmentLog, folder_for

if TYPE_CHECKING:
    from pathlib import Path


@dataclass(frozen=True, slots=True)
class SinkReport:
    """One sink's backlog as ``wgw queue`` shows it."""

    sink: str
    pending_rows: int
    pending_bytes: int
    oldest_age_s: float | None
    dead_letters: int


@dataclass(frozen=True, slots=True)
class QueueReport:
    """The whole outbox."""

    rows: int
    sinks: tuple[SinkReport, ...]
    evicted: dict[str, int]
    corrupt_recoveries: int


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One parked row."""

    sink: str
    record_id: int
    device_id: str
    stream: str
    seq: int
    t0_s: float
    attempts: int
    error: str | None


def _connect(path: Path) -> sqlite3.Connection:
    """Open the file; refuse one whose schema differs (only the daemon migrates, at start).

    Raises:
        FileNotFoundError: There is no outbox at ``path``, or its schema is not this version's.
    """
    if not path.exists():
        msg = f"no outbox at {path}"
        raise FileNotFoundError(msg)
    db = sqlite3.connect(f"file:{path}?mode=rw", uri=True, isolation_level=None, timeout=10)
    db.execute("PRAGMA busy_timeout=10000")
    found = schema.version(db)
    if found != schema.SCHEMA_VERSION:
        db.close()
        msg = (
            f"{path} has schema {found}, this gateway reads {schema.SCHEMA_VERSION}:"
            " start the daemon once (wgw run) to migrate it"
        )
        raise FileNotFoundError(msg)
    return db


def _log(path: Path) -> SegmentLog:
    return SegmentLog(folder_for(path))


_SELECTED: Final = "(? IS NULL OR r.participant_id = ?) AND (? IS NULL OR r.session_id = ?)"


def report(
    path: Path, *, participant: str | None = None, session: int | None = None
) -> QueueReport:
    """Per sink: backlog rows, bytes and oldest age, dead letters; evictions by kind.

    ``participant`` / ``session``: count only that participant's / session's rows.
    """
    now = time.time()
    selected = (participant, participant, session, session)
    with contextlib.closing(_connect(path)) as db:
        (rows,) = db.execute(
            f"SELECT COUNT(*) FROM records r WHERE {_SELECTED}",  # noqa: S608 - a constant
            selected,
        ).fetchone()
        sinks = tuple(
            SinkReport(sink, pending or 0, size or 0, now - oldest if oldest else None, dead or 0)
            for sink, pending, size, oldest, dead in db.execute(
                "SELECT p.sink, SUM(p.dead = 0), SUM(CASE WHEN p.dead = 0 THEN r.size END),"  # noqa: S608
                " MIN(CASE WHEN p.dead = 0 THEN r.stored_s END), SUM(p.dead = 1)"
                " FROM pending p JOIN records r ON r.id = p.record_id"
                f" WHERE {_SELECTED} GROUP BY p.sink ORDER BY p.sink",
                selected,
            )
        )
        counters = dict(db.execute("SELECT name, value FROM counters").fetchall())
    evicted = {
        k.removeprefix("evicted."): v for k, v in counters.items() if k.startswith("evicted.")
    }
    return QueueReport(rows, sinks, evicted, counters.get("corrupt_recoveries", 0))


def backfill(path: Path) -> list[DeviceBackfill]:
    """Per device: readings fetched from its memory, gaps filled, gaps still open."""
    with contextlib.closing(_connect(path)) as db:
        counts = db.execute(BACKFILLED_SQL).fetchall()
        gap_rows = db.execute(GAPS_SQL).fetchall()
        cursors = db.execute(CURSORS_SQL).fetchall()
    log = _log(path)
    try:
        gaps = [
            (device, stream, t0, log.payload(inline, seg, offset, size))
            for device, stream, t0, inline, seg, offset, size in gap_rows
        ]
    finally:
        log.close()
    return summarize(counts, gaps, cursors)


def dead_letters(path: Path, sink: str | None = None, limit: int = 100) -> list[DeadLetter]:
    """The parked rows, oldest first."""
    with contextlib.closing(_connect(path)) as db:
        rows = db.execute(
            "SELECT p.sink, r.id, r.device_id, r.stream, r.seq, r.t0_s, p.attempts, p.last_error"
            " FROM pending p JOIN records r ON r.id = p.record_id"
            " WHERE p.dead = 1 AND (? IS NULL OR p.sink = ?) ORDER BY r.id LIMIT ?",
            (sink, sink, limit),
        ).fetchall()
    return [DeadLetter(*row) for row in rows]


def retry_dead_letters(path: Path, sink: str | None = None) -> int:
    """Put dead letters back in their sink's backlog, due now; return how many."""
    with contextlib.closing(_connect(path)) as db:
        cur = db.execute(
            "UPDATE pending SET dead = 0, next_attempt_s = 0"
            " WHERE dead = 1 AND (? IS NULL OR sink = ?)",
            (sink, sink),
        )
        return cur.rowcount


def latest_vitals(path: Path, device_id: str) -> dict[str, tuple[float, bytes, str]]:
    """The newest vitals reading of each stream of ``device_id``: (t0_s, payload, encoding)."""
    with contextlib.closing(_connect(path)) as db:
        rows = db.execute(
            "SELECT stream, t0_s, payload, seg, seg_offset, size, encoding FROM records WHERE id IN"
            " (SELECT MAX(id) FROM records WHERE device_id = ? AND kind = 'vital' GROUP BY stream)",
            (device_id,),
        ).fetchall()
    log = _log(path)
    try:
        return {
            stream: (t0, log.payload(inline, seg, offset, size), encoding)
            for stream, t0, inline, seg, offset, size, encoding in rows
        }
    finally:
        log.close()


@dataclass(frozen=True, slots=True)
class StoredWaveform:
    """One waveform row as stored (the caller decodes its payload)."""

    t0_s: float
    sample_rate_hz: float
    dtype: str
    shape: tuple[int, ...]
    encoding: str
    payload: bytes


def waveform_at(
    path: Path, device_id: str, stream: str, at_s: float | None = None
) -> StoredWaveform | None:
    """The latest ``stream`` row of ``device_id`` starting at or before ``at_s``, if any.

    ``at_s`` None: the newest row of the stream.
    """
    with contextlib.closing(_connect(path)) as db:
        row = db.execute(
            "SELECT t0_s, sample_rate_hz, dtype, shape, encoding, payload, seg, seg_offset, size"
            " FROM records"
            " WHERE device_id = ? AND stream = ? AND kind = 'waveform' AND t0_s <= ?"
            " ORDER BY t0_s DESC LIMIT 1",
            (device_id, stream, float("inf") if at_s is None else at_s),
        ).fetchone()
    if row is None:
        return None
    t0, rate, dtype, shape, encoding, inline, seg, offset, size = row
    log = _log(path)
    try:
        payload = log.payload(inline, seg, offset, size)
    finally:
        log.close()
    return StoredWaveform(t0, rate, dtype, tuple(json.loads(shape)), encoding, payload)


@dataclass(frozen=True, slots=True)
class SessionReport:
    """One recording session and how many rows it holds."""

    id: int
    participant_id: str
    label: str | None
    started_s: float
    stopped_s: float | None
    rows: int
    markers: int


def sessions(path: Path, participant: str | None = None) -> list[SessionReport]:
    """The recording sessions, oldest first, with their row and marker counts."""
    with contextlib.closing(_connect(path)) as db:
        rows = db.execute(
            "SELECT s.id, s.participant_id, s.label, s.started_s, s.stopped_s,"
            " (SELECT COUNT(*) FROM records r WHERE r.session_id = s.id),"
            " (SELECT COUNT(*) FROM markers m WHERE m.session_id = s.id)"
            " FROM sessions s WHERE (? IS NULL OR s.participant_id = ?) ORDER BY s.id",
            (participant, participant),
        ).fetchall()
    return [SessionReport(*row) for row in rows]


@dataclass(frozen=True, slots=True)
class Selected:
    """Which rows an export takes: one device, a time range, a participant or a session."""

    device_id: str
    from_s: float = float("-inf")
    to_s: float = float("inf")
    participant: str | None = None
    session: int | None = None


def selected_records(path: Path, sel: Selected) -> list[OutboxRecord]:
    """The device's rows in the range, in time order (payloads still packed)."""
    with contextlib.closing(_connect(path)) as db:
        rows = db.execute(
            "SELECT kind, device_id, stream, seq, t0_s, sample_rate_hz, dtype, shape,"  # noqa: S608
            " encoding, participant_id, session_id, payload, seg, seg_offset, size, backfilled"
            " FROM records r"
            " WHERE device_id = ? AND t0_s >= ? AND t0_s < ?"
            f" AND {_SELECTED} ORDER BY t0_s, id",
            (sel.device_id, sel.from_s, sel.to_s, *_selection(sel)),
        ).fetchall()
    log = _log(path)
    try:
        return [
            OutboxRecord(
                kind,
                device,
                stream,
                seq,
                t0,
                log.payload(inline, seg, offset, size),
                sample_rate_hz=rate,
                dtype=dtype,
                shape=tuple(json.loads(shape)) if shape else None,
                encoding=encoding,
                participant_id=participant,
                session_id=session,
                backfilled=bool(backfilled),
            )
            for (
                kind,
                device,
                stream,
                seq,
                t0,
                rate,
                dtype,
                shape,
                encoding,
                participant,
                session,
                inline,
                seg,
                offset,
                size,
                backfilled,
            ) in rows
        ]
    finally:
        log.close()


def selected_markers(path: Path, sel: Selected) -> list[tuple[float, str]]:
    """Markers in the range (of the participant or session if selected): (time, text)."""
    with contextlib.closing(_connect(path)) as db:
        rows = db.execute(
            "SELECT t_s, text FROM markers r WHERE t_s >= ? AND t_s < ?"  # noqa: S608
            f" AND {_SELECTED} ORDER BY t_s",
            (sel.from_s, sel.to_s, *_selection(sel)),
        ).fetchall()
    return [(float(t), str(text)) for t, text in rows]


def _selection(sel: Selected) -> tuple[object, ...]:
    return (sel.participant, sel.participant, sel.session, sel.session)
