"""Room on the disk: the size cap, a full disk, and the steps that make room, every loss counted.

Past the cap the retention policy evicts (``buffers.retention``). When SQLite or the segment
log says the disk (or ``max_page_count``) is full, the writer evicts, then refuses raw waveforms
while the shortage lasts, keeps vitals flowing, and recovers by itself when room returns.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import shutil
import sqlite3
from typing import TYPE_CHECKING, Final

from buffers import retention

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from buffers.outbox.counts import Counts
    from buffers.outbox.index import Index
    from buffers.records import OutboxRecord

log = logging.getLogger(__name__)

_LOW_WATER: Final = 0.8  # evict down to this fraction of the cap (then not again for a while)
_RECOVER_BYTES: Final = 1 << 20  # room needed before raw waveforms are accepted again
_FULL_RETRY_S: Final = 1.0
_SQLITE_FULL: Final = 13
_SQLITE_IOERR: Final = 10  # what an ENOSPC while writing the WAL can also look like


class Room:
    """The cap, the page budget, and whether the disk is full right now."""

    def __init__(self, index: Index, counts: Counts, cap_bytes: int | None) -> None:
        self._index = index
        self._counts = counts
        self._cap_bytes = cap_bytes
        self._budget_bytes: int | None = None  # pages allowed plus segment bytes
        self.full = False

    def reset(self) -> None:
        """The store was reopened: nothing is known to be full."""
        self.full = False

    async def limit_pages(self, max_pages: int) -> None:
        """Cap the file at ``max_pages`` pages; the segment log shares the same budget."""
        index = self._index
        async with index.tx:
            await index.commit_index()
            await index.db.execute(f"PRAGMA max_page_count={int(max_pages)}")
            page_size = (await retention.usage(index.db)).page_size
        self._budget_bytes = int(max_pages) * page_size

    async def limit_log(self) -> None:
        """Before an append: the segment log may take what the budget leaves (if there is one)."""
        if self._budget_bytes is not None:
            used = (await retention.usage(self._index.db)).used_bytes
            self._index.segments.limit_bytes(self._budget_bytes - used)

    async def commit(
        self,
        batch: list[OutboxRecord],
        commit: Callable[[list[OutboxRecord]], Awaitable[None]],
    ) -> None:
        """``commit(batch)``, making room by the retention policy when the disk or cap says so.

        Never raises for a full disk. Steps, each tried only if the commit still fails: evict
        (delivered rows, then undelivered waveforms), refuse this batch's raw waveforms
        (counted), evict the oldest undelivered vitals, then wait and retry, holding the batch
        (the bounded queue in front applies back-pressure).
        """
        if self.full:
            if await self._room_returned():
                self.full = False
                log.warning("storage has room again: accepting raw waveforms")
            else:
                batch = self._refuse_waveforms(batch)
        steps = iter(("evict", "refuse_waveforms", "evict_vitals"))
        while not await _unless_full(commit, batch):
            if not self.full:
                self.full = True
                log.error("storage is full: evicting, refusing raw waveforms until room returns")
            step = next(steps, None)
            if step is None:
                await asyncio.sleep(_FULL_RETRY_S)
                steps = iter(("evict", "evict_vitals"))
            elif step == "refuse_waveforms":
                batch = self._refuse_waveforms(batch)
            else:
                need = max(2 * sum(len(r.payload) for r in batch), 64 * 1024)
                target = await self._used_bytes() - need
                tiers = retention.WAVEFORM_TIERS if step == "evict" else len(retention.TIERS)
                await self._evict(target, tiers, now=True)
        if self._cap_bytes is not None and await self._used_bytes() > self._cap_bytes:
            await self._evict(int(self._cap_bytes * _LOW_WATER), len(retention.TIERS))

    async def commit_index(self) -> None:
        """The writer's index commit: a full disk leaves the rows in the log, never raises."""
        index = self._index
        try:
            async with index.tx:
                await index.commit_index()
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode not in (_SQLITE_FULL, _SQLITE_IOERR):
                raise
            if not index.db.in_transaction:  # rolled back: the log still has it all
                await index.lost_index()
            self.full = True  # the next commit evicts first
            log.error("the index could not commit (%s): it is retried; the log holds the rows", exc)

    async def _used_bytes(self) -> int:
        return await retention.used_bytes(self._index.db, self._index.segments_if_open)

    def _refuse_waveforms(self, batch: list[OutboxRecord]) -> list[OutboxRecord]:
        kept = [r for r in batch if r.kind != "waveform"]
        self._counts.discard("storage_full", len(batch) - len(kept))
        return kept

    async def _room_returned(self) -> bool:
        index = self._index
        usage = await retention.usage(index.db)
        disk_free = shutil.disk_usage(index.path.parent).free
        room = usage.room_bytes
        if self._budget_bytes is not None:
            used = usage.used_bytes + index.segments.total_bytes()
            room = min(room, self._budget_bytes - used)
        return room >= _RECOVER_BYTES and disk_free >= _RECOVER_BYTES

    async def _evict(self, target_used_bytes: int, tiers: int, *, now: bool = False) -> None:
        """Evict down to ``target_used_bytes``.

        Under the cap (``now`` false) the deletions ride the open index transaction, written
        with it once a minute, and the files they empty go after its commit. On a full disk
        (``now``) they commit at once and the files go at once: the space is needed now.
        """
        index = self._index
        async with index.tx:
            if now:
                await index.commit_index()
            else:
                await index.open_index()
            try:
                evicted = await retention.evict(
                    index.db,
                    target_used_bytes=target_used_bytes,
                    tiers=tiers,
                    segments=index.segments,
                    forget_contexts=index.contexts.forget,
                )
            except sqlite3.OperationalError as exc:
                log.error("eviction failed: %s", exc)
                return
            if now:
                await index.purge()
        for key, count in evicted.items():
            log.warning("retention: evicted %d %s rows", count, key)


async def _unless_full(
    commit: Callable[[list[OutboxRecord]], Awaitable[None]], batch: list[OutboxRecord]
) -> bool:
    """``commit(batch)``; False when SQLite or the segment log found the disk (or budget) full."""
    try:
        await commit(batch)
    except sqlite3.OperationalError as exc:
        if exc.sqlite_errorcode != _SQLITE_FULL:
            raise
        return False
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        return False
    return True
