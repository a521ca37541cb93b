"""The outbox's schema, as forward migrations from an empty file to the current version.

A fresh database runs every migration; an older one runs those it lacks, in one transaction
each, at start. Never edit a released migration: add the next one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    import sqlite3

# Version 1: the walking skeleton's layout.
_V1: Final = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    device_id TEXT NOT NULL,
    stream TEXT NOT NULL,
    seq INTEGER NOT NULL,
    t0_s REAL NOT NULL,
    sample_rate_hz REAL,
    dtype TEXT,
    shape TEXT,
    payload BLOB NOT NULL,
    stored_s REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS pending (
    sink TEXT NOT NULL,
    record_id INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_s REAL NOT NULL DEFAULT 0,
    dead INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    PRIMARY KEY (sink, record_id)
) WITHOUT ROWID;
"""

# Version 2: payload encoding and size (retention, backlog bytes), how many sinks wanted each
# row (0: kept for export only, never "delivered"), persisted counters (evictions,
# recoveries), and the index that finds a record's pending rows.
_V2: Final = """
ALTER TABLE records ADD COLUMN encoding TEXT NOT NULL DEFAULT 'raw';
ALTER TABLE records ADD COLUMN size INTEGER NOT NULL DEFAULT 0;
ALTER TABLE records ADD COLUMN sinks INTEGER NOT NULL DEFAULT 0;
UPDATE records SET size = length(payload), sinks = 1;
CREATE INDEX pending_by_record ON pending (record_id);
CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
"""

# Version 3: clock trust. Each row keeps the boot it was stamped in, the offset from the
# monotonic clock to UTC it was stamped with, and whether the system clock was synchronised
# then; a wall-clock jump corrects this boot's untrusted rows and is recorded.
_V3: Final = """
ALTER TABLE records ADD COLUMN boot_id TEXT;
ALTER TABLE records ADD COLUMN clock_offset_s REAL;
ALTER TABLE records ADD COLUMN clock_synced INTEGER;
ALTER TABLE records ADD COLUMN clock_corrected_s REAL NOT NULL DEFAULT 0;
CREATE INDEX records_untrusted ON records (boot_id) WHERE clock_synced IS NOT 1;
CREATE TABLE clock_events (
    id INTEGER PRIMARY KEY,
    boot_id TEXT NOT NULL,
    at_mono_s REAL NOT NULL,
    at_utc_s REAL NOT NULL,
    offset_before_s REAL NOT NULL,
    offset_after_s REAL NOT NULL,
    synced INTEGER,
    rows_corrected INTEGER NOT NULL
);
"""

# Version 4: study context. Rows carry the participant their device was assigned to and the
# participant's recording session at the time; assignments take effect from a moment and are
# never rewritten; markers are annotations on the samples' time line.
_V4: Final = """
ALTER TABLE records ADD COLUMN participant_id TEXT;
ALTER TABLE records ADD COLUMN session_id INTEGER;
CREATE TABLE assignments (
    device_id TEXT NOT NULL,
    from_s REAL NOT NULL,
    participant_id TEXT,
    site TEXT,
    study TEXT,
    source TEXT NOT NULL DEFAULT 'api',
    PRIMARY KEY (device_id, from_s)
) WITHOUT ROWID;
CREATE TABLE sessions (
    id INTEGER PRIMARY KEY,
    participant_id TEXT NOT NULL,
    label TEXT,
    started_s REAL NOT NULL,
    stopped_s REAL
);
CREATE TABLE markers (
    id INTEGER PRIMARY KEY,
    t_s REAL NOT NULL,
    text TEXT NOT NULL,
    participant_id TEXT,
    session_id INTEGER,
    boot_id TEXT,
    clock_offset_s REAL,
    clock_synced INTEGER
);
"""

# Version 5: the SD card. Payloads move to the append-only segment log (buffers/segments.py);
# what repeats from row to row (device, stream, rate, dtype, encoding, clock stamp, study
# labels) moves to one ``contexts`` row, so that an ``items`` row is some 40 bytes; ``records``
# becomes a view with the old columns; its ``payload`` is NULL where ``seg``/``seg_offset``/
# ``size`` say where in the log it lies. Rows written before keep their payload inline.
_CONTEXT_COLUMNS: Final = (
    "kind, device_id, stream, sample_rate_hz, dtype, encoding, boot_id, clock_offset_s,"
    " clock_synced, participant_id, session_id"
)
_V5: Final = f"""
CREATE TABLE contexts (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    device_id TEXT NOT NULL,
    stream TEXT NOT NULL,
    sample_rate_hz REAL,
    dtype TEXT,
    encoding TEXT NOT NULL,
    boot_id TEXT,
    clock_offset_s REAL,
    clock_synced INTEGER,
    participant_id TEXT,
    session_id INTEGER,
    first_id INTEGER NOT NULL
);
INSERT INTO contexts ({_CONTEXT_COLUMNS}, first_id)
    SELECT {_CONTEXT_COLUMNS}, MIN(id) FROM records GROUP BY {_CONTEXT_COLUMNS};
CREATE TABLE items (
    id INTEGER PRIMARY KEY,
    ctx INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    t0_s REAL NOT NULL,
    shape TEXT,
    size INTEGER NOT NULL,
    sinks INTEGER NOT NULL,
    stored_s REAL NOT NULL,
    clock_corrected_s REAL NOT NULL DEFAULT 0,
    seg INTEGER,
    seg_offset INTEGER,
    payload BLOB
);
INSERT INTO items (id, ctx, seq, t0_s, shape, size, sinks, stored_s, clock_corrected_s, payload)
    SELECT r.id, c.id, r.seq, r.t0_s, r.shape, r.size, r.sinks, r.stored_s, r.clock_corrected_s,
        r.payload
    FROM records r JOIN contexts c ON c.kind IS r.kind AND c.device_id IS r.device_id
        AND c.stream IS r.stream AND c.sample_rate_hz IS r.sample_rate_hz
        AND c.dtype IS r.dtype AND c.encoding IS r.encoding AND c.boot_id IS r.boot_id
        AND c.clock_offset_s IS r.clock_offset_s AND c.clock_synced IS r.clock_synced
        AND c.participant_id IS r.participant_id AND c.session_id IS r.session_id;
DROP INDEX records_untrusted;
DROP TABLE records;
CREATE VIEW records AS SELECT
    i.id AS id, c.kind AS kind, c.device_id AS device_id, c.stream AS stream, i.seq AS seq,
    i.t0_s AS t0_s, c.sample_rate_hz AS sample_rate_hz, c.dtype AS dtype, i.shape AS shape,
    i.payload AS payload,
    i.stored_s AS stored_s, c.encoding AS encoding, i.size AS size, i.sinks AS sinks,
    c.boot_id AS boot_id, c.clock_offset_s AS clock_offset_s, c.clock_synced AS clock_synced,
    i.clock_corrected_s AS clock_corrected_s, c.participant_id AS participant_id,
    c.session_id AS session_id, i.ctx AS ctx, i.seg AS seg, i.seg_offset AS seg_offset
FROM items i JOIN contexts c ON c.id = i.ctx
"""  # noqa: S608 - built from constants

# Version 6: backfill. Rows fetched from a device's memory after a gap are marked (their
# context says so); a reading's own identity at its source (a device timestamp) is kept once
# per device and stream, so that a reading fetched again is recognised; and each device
# stream's cursor (the newest record sequence number seen) says where the next fetch starts.
_V6: Final = """
ALTER TABLE contexts ADD COLUMN backfilled INTEGER NOT NULL DEFAULT 0;
CREATE TABLE source_keys (
    device_id TEXT NOT NULL,
    stream TEXT NOT NULL,
    key TEXT NOT NULL,
    record_id INTEGER NOT NULL,
    PRIMARY KEY (device_id, stream, key)
) WITHOUT ROWID;
CREATE TABLE source_cursors (
    device_id TEXT NOT NULL,
    stream TEXT NOT NULL,
    cursor INTEGER NOT NULL,
    PRIMARY KEY (device_id, stream)
) WITHOUT ROWID;
DROP VIEW records;
CREATE VIEW records AS SELECT
    i.id AS id, c.kind AS kind, c.device_id AS device_id, c.stream AS stream, i.seq AS seq,
    i.t0_s AS t0_s, c.sample_rate_hz AS sample_rate_hz, c.dtype AS dtype, i.shape AS shape,
    i.payload AS payload,
    i.stored_s AS stored_s, c.encoding AS encoding, i.size AS size, i.sinks AS sinks,
    c.boot_id AS boot_id, c.clock_offset_s AS clock_offset_s, c.clock_synced AS clock_synced,
    i.clock_corrected_s AS clock_corrected_s, c.participant_id AS participant_id,
    c.session_id AS session_id, i.ctx AS ctx, i.seg AS seg, i.seg_offset AS seg_offset,
    c.backfilled AS backfilled
FROM items i JOIN contexts c ON c.id = i.ctx
"""

# Version 7: where each device stream's stored data ends (UTC), kept at each index commit, so
# that a start can mark the time since as a gap without reading every row.
_V7: Final = """
CREATE TABLE stream_ends (
    device_id TEXT NOT NULL,
    stream TEXT NOT NULL,
    end_s REAL NOT NULL,
    PRIMARY KEY (device_id, stream)
) WITHOUT ROWID;
INSERT INTO stream_ends (device_id, stream, end_s)
    SELECT c.device_id, c.stream,
        MAX(i.t0_s + CASE WHEN c.kind = 'waveform' AND c.sample_rate_hz > 0
            THEN json_extract(i.shape, '$[0]') / c.sample_rate_hz ELSE 0 END)
    FROM items i JOIN contexts c ON c.id = i.ctx
    WHERE c.kind IN ('waveform', 'vital')
    GROUP BY c.device_id, c.stream
"""

MIGRATIONS: Final = (_V1, _V2, _V3, _V4, _V5, _V6, _V7)
SCHEMA_VERSION: Final = len(MIGRATIONS)


def version(db: sqlite3.Connection) -> int:
    """The schema version of an open database (0: empty)."""
    has_meta = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
    ).fetchone()
    if not has_meta:
        return 0
    row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row else 0


def migrate(db: sqlite3.Connection) -> tuple[int, int]:
    """Bring ``db`` to :data:`SCHEMA_VERSION`; return (from, to).

    Raises:
        RuntimeError: The database was written by a newer version of the gateway.
    """
    start = version(db)
    if start > SCHEMA_VERSION:
        msg = f"database schema {start} is newer than this gateway's {SCHEMA_VERSION}"
        raise RuntimeError(msg)
    for number in range(start + 1, SCHEMA_VERSION + 1):
        db.execute("BEGIN IMMEDIATE")
        try:
            for statement in MIGRATIONS[number - 1].split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
                (str(number),),
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    return start, SCHEMA_VERSION
