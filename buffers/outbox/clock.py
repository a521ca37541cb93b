"""After a wall-clock jump: this boot's rows of another, untrusted offset moved onto the new one.

Exact, because the monotonic clock under the stamps did not move; markers move with the rows,
and the event is recorded in ``clock_events``.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING

from buffers.errors import StorageError
from buffers.outbox.rows import CONTEXT_FIELDS, ContextKey

if TYPE_CHECKING:
    import asyncio

    import aiosqlite

    from buffers.outbox.index import Index


@dataclass(frozen=True, slots=True)
class ClockCorrection:
    """The wall clock jumped: move this boot's rows stamped with another, untrusted offset."""

    boot_id: str
    offset_s: float  # the new offset from the monotonic clock to UTC
    at_mono_s: float
    offset_before_s: float
    synced: bool | None
    done: asyncio.Future[int]  # resolved with the number of rows corrected


async def apply(index: Index, c: ClockCorrection) -> None:
    """Correct the rows and markers, record the event; ``c.done`` hears how many rows moved."""
    try:
        async with index.tx:
            await index.commit_index()
            async with index.own_transaction() as db:
                moved = await _move_untrusted(index, db, c)
                await db.execute(
                    "UPDATE markers SET t_s = t_s + (? - clock_offset_s), clock_offset_s = ?"
                    " WHERE boot_id = ? AND clock_synced IS NOT 1"
                    " AND abs(clock_offset_s - ?) > 0.001",
                    (c.offset_s, c.offset_s, c.boot_id, c.offset_s),
                )
                await db.execute(
                    "INSERT INTO clock_events (boot_id, at_mono_s, at_utc_s, offset_before_s,"
                    " offset_after_s, synced, rows_corrected) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        c.boot_id,
                        c.at_mono_s,
                        c.at_mono_s + c.offset_s,
                        c.offset_before_s,
                        c.offset_s,
                        c.synced,
                        moved,
                    ),
                )
    except sqlite3.OperationalError as exc:  # a full disk: the rows stay, the caller hears
        if not c.done.done():
            c.done.set_exception(StorageError(f"clock correction failed: {exc}"))
        return
    if not c.done.done():
        c.done.set_result(moved)


async def _move_untrusted(index: Index, db: aiosqlite.Connection, c: ClockCorrection) -> int:
    """Move this boot's untrusted rows of another offset onto the new one; how many.

    Each such context's rows get a context with the new offset and their times shifted by the
    difference.
    """
    async with db.execute(
        f"SELECT id, first_id, {CONTEXT_FIELDS} FROM contexts"  # noqa: S608 - constants
        " WHERE boot_id = ? AND clock_synced IS NOT 1 AND abs(clock_offset_s - ?) > 0.001",
        (c.boot_id, c.offset_s),
    ) as cur:
        stale = list(await cur.fetchall())
    moved = 0
    for row in stale:
        fields = tuple(row)[2:]
        key: ContextKey = (*fields[:7], c.offset_s, *fields[8:])
        new_ctx = await index.contexts.id_of(db, key, row["first_id"])
        shift = c.offset_s - row["clock_offset_s"]
        cur = await db.execute(
            "UPDATE items SET t0_s = t0_s + ?, clock_corrected_s = clock_corrected_s + ?,"
            " ctx = ? WHERE id >= ? AND ctx = ?",
            (shift, shift, new_ctx, row["first_id"], row["id"]),
        )
        moved += cur.rowcount
    return moved
