"""Retention under a size cap and on a full disk: what goes first, counted per kind.

Order (DESIGN.md): rows every sink has delivered, oldest first; then raw waveforms not
delivered (including those no sink wants, kept for export), oldest first; undelivered vitals
and gap markers only as the very last resort. What only named an evicted row goes with it: its
source key (backfill's "held already") and a context no row uses any more.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Callable, Collection

    import aiosqlite

    from buffers.segments import SegmentLog

_BATCH_ROWS: Final = 500

# (tier name, SQL selecting the next victims, oldest first)
TIERS: Final = (
    (
        "delivered",
        (
            "SELECT id, kind, size, shape, seg, ctx FROM records r WHERE sinks > 0 AND NOT EXISTS"
            " (SELECT 1 FROM pending p WHERE p.record_id = r.id) ORDER BY id LIMIT ?"
        ),
    ),
    (
        "undelivered",
        (
            "SELECT id, kind, size, shape, seg, ctx FROM records WHERE kind = 'waveform'"
            " ORDER BY id LIMIT ?"
        ),
    ),
    ("undelivered", "SELECT id, kind, size, shape, seg, ctx FROM records ORDER BY id LIMIT ?"),
)
WAVEFORM_TIERS: Final = 2  # the tiers that never touch an undelivered vital


@dataclass(frozen=True, slots=True)
class Usage:
    """How much of the file holds data."""

    page_size: int
    pages: int
    free_pages: int
    max_pages: int

    @property
    def used_bytes(self) -> int:
        """Bytes in pages that hold data (the file may be larger: free pages are reused)."""
        return (self.pages - self.free_pages) * self.page_size

    @property
    def room_bytes(self) -> int:
        """Bytes the file can still take before ``max_page_count``: free pages included."""
        return (self.max_pages - self.pages + self.free_pages) * self.page_size


async def usage(db: aiosqlite.Connection) -> Usage:
    """Read the page counts (cheap: no table is scanned)."""
    values = []
    for pragma in ("page_size", "page_count", "freelist_count", "max_page_count"):
        async with db.execute(f"PRAGMA {pragma}") as cur:
            row = await cur.fetchone()
        values.append(int(row[0]) if row else 0)
    return Usage(*values)


async def used_bytes(db: aiosqlite.Connection, segments: SegmentLog | None) -> int:
    """The file's data pages and the segment files together."""
    return (await usage(db)).used_bytes + (segments.total_bytes() if segments else 0)


async def drop_dead_segments(
    db: aiosqlite.Connection, segments: SegmentLog, among: Collection[int] | None = None
) -> int:
    """Retire the segment files (``among`` these, or all) whose every row is gone; bytes freed."""
    freed = 0
    for seg, first, last in segments.id_ranges():
        if among is not None and seg not in among:
            continue
        async with db.execute(
            "SELECT 1 FROM items WHERE id BETWEEN ? AND ? AND seg = ? LIMIT 1", (first, last, seg)
        ) as cur:
            if await cur.fetchone() is None:
                freed += segments.retire(seg)
    return freed


async def evict(
    db: aiosqlite.Connection,
    *,
    target_used_bytes: int,
    tiers: int = len(TIERS),
    segments: SegmentLog | None = None,
    forget_contexts: Callable[[Collection[int]], None] | None = None,
) -> dict[str, int]:
    """Delete rows tier by tier until the data fits in ``target_used_bytes``.

    Each batch is a savepoint (inside the caller's transaction if one is open); returns the
    counts per ``<tier>.<kind>``. A segment file is retired once none of its rows is left; the
    caller purges it after the commit. The contexts the evicted rows leave unused are deleted
    at the end, and ``forget_contexts`` (the writer's cache) is told their ids.
    """
    evicted: dict[str, int] = {}
    emptied: set[int] = set()  # contexts that lost rows
    for tier, select in TIERS[:tiers]:
        while (excess := await used_bytes(db, segments) - target_used_bytes) > 0:
            async with db.execute(select, (_BATCH_ROWS,)) as cur:
                candidates = await cur.fetchall()
            if not candidates:
                break
            # Oldest first, only as many as the excess needs (each row also costs its share of
            # page and index overhead, hence the 64-byte allowance).
            victims: list[aiosqlite.Row] = []
            freed = 0
            for row in candidates:
                victims.append(row)
                freed += row[2] + 64
                if freed >= excess:
                    break
            batch = await _delete(db, tier, victims)
            emptied.update(row[5] for row in victims)
            for key, count in batch.items():
                if key.startswith("evicted."):
                    short = key.removeprefix("evicted.")
                    evicted[short] = evicted.get(short, 0) + count
            if segments is not None:
                await drop_dead_segments(db, segments, {row[4] for row in victims})
    if segments is not None and evicted:
        await drop_dead_segments(db, segments)  # and any left empty before (a crash)
    if emptied:
        unused = await _drop_unused_contexts(db, emptied)
        if forget_contexts is not None:
            forget_contexts(unused)
    return evicted


async def _delete(
    db: aiosqlite.Connection, tier: str, victims: list[aiosqlite.Row]
) -> dict[str, int]:
    """Delete one batch of victims (id, kind, size, shape, seg, ctx) in a savepoint.

    Returns the counters it added to.
    """
    ids = [(row[0],) for row in victims]
    batch: dict[str, int] = {}
    for _, kind, _, shape, _, _ in victims:
        batch[f"evicted.{tier}.{kind}"] = batch.get(f"evicted.{tier}.{kind}", 0) + 1
        if kind == "waveform" and shape:  # samples too, for whoever balances the books
            samples = json.loads(shape)[0]
            batch[f"evicted_samples.{tier}"] = batch.get(f"evicted_samples.{tier}", 0) + samples
    keyed = [(row[0],) for row in victims if row[1] != "waveform"]
    # a savepoint: inside the outbox's open index transaction, or a transaction alone
    await db.execute("SAVEPOINT wgw_evict")
    try:
        await db.executemany("DELETE FROM pending WHERE record_id = ?", ids)
        await db.executemany("DELETE FROM items WHERE id = ?", ids)
        if keyed:  # only readings carry source keys; the table is small
            await db.executemany("DELETE FROM source_keys WHERE record_id = ?", keyed)
        await db.executemany(
            "INSERT INTO counters (name, value) VALUES (?, ?)"
            " ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
            list(batch.items()),
        )
        await db.execute("RELEASE wgw_evict")
    except BaseException:
        await db.execute("ROLLBACK TO wgw_evict")
        await db.execute("RELEASE wgw_evict")
        raise
    return batch


async def _drop_unused_contexts(db: aiosqlite.Connection, candidates: set[int]) -> list[int]:
    """Delete the ``candidates`` no row uses any more; their ids.

    One scan of ``items`` (no index on ``ctx``: it would cost every insert a second B-tree);
    evictions come seldom, and in batches, thanks to the low-water mark.
    """
    marks = ", ".join("?" * len(candidates))
    async with db.execute(
        f"SELECT id FROM contexts WHERE id IN ({marks})"  # noqa: S608 - placeholders
        " AND id NOT IN (SELECT ctx FROM items)",
        tuple(candidates),
    ) as cur:
        unused = [int(row[0]) for row in await cur.fetchall()]
    await db.executemany("DELETE FROM contexts WHERE id = ?", [(i,) for i in unused])
    return unused
