"""The index's rows: contexts, and a group commit's rows with each interested sink's pending row.

A context is what neighbouring records share (device, stream, rate, clock, labels): one row each.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Mapping, Sequence

    import aiosqlite

    from buffers.records import OutboxRecord
    from buffers.segments import Placed

_INSERT_ITEM: Final = (
    "INSERT INTO items (id, ctx, seq, t0_s, shape, size, sinks, stored_s, seg, seg_offset)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
CONTEXT_FIELDS: Final = (
    "kind, device_id, stream, sample_rate_hz, dtype, encoding, boot_id, clock_offset_s,"
    " clock_synced, participant_id, session_id, backfilled"
)

ContextKey = tuple[object, ...]


class Contexts:
    """The ``contexts`` table, cached: each distinct set of shared fields has one row and id."""

    def __init__(self) -> None:
        self._ids: dict[ContextKey, int] = {}

    async def load(self, db: aiosqlite.Connection) -> None:
        """Read the table again (after a rollback dropped rows the cache holds)."""
        self._ids.clear()
        async with db.execute(f"SELECT id, {CONTEXT_FIELDS} FROM contexts") as cur:  # noqa: S608
            for row in await cur.fetchall():
                self._ids[tuple(row)[1:]] = row[0]

    def forget(self, ids: Collection[int]) -> None:
        """These rows were deleted (no record used them any more)."""
        if ids:
            gone = set(ids)
            self._ids = {key: ctx for key, ctx in self._ids.items() if ctx not in gone}

    async def id_of(self, db: aiosqlite.Connection, key: ContextKey, first_id: int) -> int:
        """The id of the context row with these fields (created, from ``first_id``, if new)."""
        ctx = self._ids.get(key)
        if ctx is None:
            cur = await db.execute(
                f"INSERT INTO contexts ({CONTEXT_FIELDS}, first_id)"  # noqa: S608 - constants
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (*key, first_id),
            )
            assert cur.lastrowid is not None
            ctx = self._ids[key] = cur.lastrowid
        return ctx


def key_of(r: OutboxRecord) -> ContextKey:
    """What ``r`` shares with its neighbours, in ``CONTEXT_FIELDS`` order."""
    c = r.clock
    return (
        r.kind,
        r.device_id,
        r.stream,
        r.sample_rate_hz,
        r.dtype,
        r.encoding,
        c.boot_id if c else None,
        c.offset_s if c else None,
        (int(c.synced) if c.synced is not None else None) if c else None,
        r.participant_id,
        r.session_id,
        int(r.backfilled),
    )


async def insert(
    db: aiosqlite.Connection,
    contexts: Contexts,
    subscriptions: Mapping[str, Callable[[OutboxRecord], bool]],
    rows: Sequence[tuple[int, OutboxRecord, float, Placed]],
) -> None:
    """Index rows (id, record, stored at, where its payload lies) and their pending rows."""
    items: list[tuple[object, ...]] = []
    pending: list[tuple[str, int]] = []
    keys: list[tuple[str, str, str, int]] = []
    cursors: list[tuple[str, str, int]] = []
    ends: dict[tuple[str, str], float] = {}
    for record_id, r, stored_s, placed in rows:
        if (end_s := data_end_s(r)) is not None:
            stream = (r.device_id, r.stream)
            ends[stream] = max(end_s, ends.get(stream, end_s))
        if r.source_key is not None:
            keys.append((r.device_id, r.stream, r.source_key, record_id))
        if r.source_cursor is not None:
            cursors.append((r.device_id, r.stream, r.source_cursor))
        ctx = await contexts.id_of(db, key_of(r), record_id)
        shape = json.dumps(list(r.shape)) if r.shape is not None else None
        sinks = [sink for sink, wants in subscriptions.items() if wants(r)]
        size = len(r.payload)
        at = (placed.seg, placed.offset)
        items.append((record_id, ctx, r.seq, r.t0_s, shape, size, len(sinks), stored_s, *at))
        pending.extend((sink, record_id) for sink in sinks)
    await db.executemany(_INSERT_ITEM, items)
    await db.executemany("INSERT INTO pending (sink, record_id) VALUES (?, ?)", pending)
    if keys:  # rare (timestamped readings): no round trip to SQLite's thread otherwise
        await db.executemany(
            "INSERT OR IGNORE INTO source_keys (device_id, stream, key, record_id)"
            " VALUES (?, ?, ?, ?)",
            keys,
        )
    await set_cursors(db, cursors)
    await db.executemany(
        "INSERT INTO stream_ends (device_id, stream, end_s) VALUES (?, ?, ?)"
        " ON CONFLICT (device_id, stream) DO UPDATE SET end_s = MAX(end_s, excluded.end_s)",
        [(*stream, end_s) for stream, end_s in ends.items()],
    )


def data_end_s(r: OutboxRecord) -> float | None:
    """Just after a data row's last unit (a reading's own time); None for other rows."""
    if r.kind == "vital":
        return r.t0_s
    if r.kind == "waveform" and r.shape and r.sample_rate_hz:
        return r.t0_s + r.shape[0] / r.sample_rate_hz
    return None


async def set_cursors(db: aiosqlite.Connection, cursors: Sequence[tuple[str, str, int]]) -> None:
    """Each (device, stream)'s cursor to the last of ``cursors`` that names it."""
    if not cursors:
        return
    await db.executemany(
        "INSERT INTO source_cursors (device_id, stream, cursor) VALUES (?, ?, ?)"
        " ON CONFLICT (device_id, stream) DO UPDATE SET cursor = excluded.cursor",
        cursors,
    )
