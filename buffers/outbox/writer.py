"""The one writer: records, acks and clock corrections in one queue, committed in groups.

A group ends when the flush interval ends, the group is full, a flush is asked for, or the
outbox closes. Each group goes to the segment log, then into the open index transaction, which
commits once an index interval. While the store fails, the newest records wait in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from buffers.errors import StorageError
from buffers.outbox import clock
from buffers.outbox.clock import ClockCorrection
from buffers.outbox.index import FAILING_RETRY_S, store_fails
from buffers.outbox.rows import set_cursors
from buffers.records import OutboxRecord

if TYPE_CHECKING:
    import aiosqlite

    from buffers.outbox.config import OutboxConfig
    from buffers.outbox.counts import Counts
    from buffers.outbox.index import Index
    from buffers.outbox.leases import Leases
    from buffers.outbox.room import Room
    from buffers.segments import Mark

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Ack:
    """Acknowledged rows, deleted from the backlog in the next group commit."""

    sink: str
    record_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class _Flush:
    """Commit what was accepted before; with ``index``, also commit the SQLite index."""

    done: asyncio.Future[None]
    index: bool


# A record to store, acks to apply, a clock correction, a flush request, or None: close.
_QueueItem = OutboxRecord | _Ack | ClockCorrection | _Flush | None


class Writer:
    """The queue in front of the store and the task that empties it."""

    def __init__(
        self, config: OutboxConfig, index: Index, room: Room, leases: Leases, counts: Counts
    ) -> None:
        self._config = config
        self._index = index
        self._room = room
        self._leases = leases
        self._counts = counts
        self._flush_interval_s = config.flush_interval_ms / 1000.0
        # Full policy: block (``put`` waits, counted as back-pressure). The same as
        # ``drivers.bounded.FullPolicy.BLOCK``, which buffers cannot import.
        self._queue: asyncio.Queue[_QueueItem] = asyncio.Queue(config.queue_max_rows)
        self._task: asyncio.Task[None] | None = None
        self._acks: list[_Ack] = []
        self._corrections: list[ClockCorrection] = []
        self._held: list[OutboxRecord] = []  # records the failing store could not take yet
        self._committed = asyncio.Event()

    @property
    def held(self) -> int:
        """Records waiting in memory for a failing store."""
        return len(self._held)

    def start(self, tg: asyncio.TaskGroup) -> None:
        """Run the writer in ``tg``."""
        self._queue = asyncio.Queue(self._config.queue_max_rows)
        self._task = tg.create_task(self._loop(), name="wgw.outbox.writer")

    async def stop(self) -> None:
        """Let the writer commit everything accepted, then end."""
        await self._queue.put(None)

    def _running(self, doing: str) -> asyncio.Task[None]:
        task = self._task
        if task is None or task.done():
            msg = f"outbox is not {doing} (closed, or its writer failed)"
            raise StorageError(msg)
        return task

    async def put(self, record: OutboxRecord) -> None:
        """Queue a record; waits while the queue is full (back-pressure, counted)."""
        self._running("accepting records")
        if self._queue.full():
            self._counts.backpressure_waits += 1
        await self._queue.put(record)
        self._counts.accepted += 1

    async def flush(self, *, index: bool) -> None:
        """Commit everything queued so far (and the index, with ``index``)."""
        task = self._running("writing")
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Flush(done, index))
        await asyncio.wait([done, task], return_when=asyncio.FIRST_COMPLETED)
        if not done.done():
            msg = "the outbox writer stopped before committing"
            raise StorageError(msg)
        done.result()  # StorageError: the store is failing

    async def ack(self, sink: str, record_ids: tuple[int, ...]) -> None:
        """Queue acks; the deletion rides the next group commit."""
        await self._queue.put(_Ack(sink, record_ids))

    async def correct_clock(self, correction: ClockCorrection) -> None:
        """Queue a correction, applied after everything queued before it is committed."""
        await self._queue.put(correction)

    async def wait_committed(self, timeout_s: float) -> None:
        """Return after the next commit, or after ``timeout_s``."""
        event = self._committed
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await event.wait()

    async def _loop(self) -> None:
        index = self._index
        while True:
            batch, flushes, closing = await self._gather()
            if self._held:
                batch, self._held = [*self._held, *batch], []
            stored = False
            if index.failing is not None and not await self._reopened():
                self._hold(batch)
                while self._corrections:  # the caller tries again later
                    c = self._corrections.pop(0)
                    c.done.set_exception(StorageError(f"the store is failing: {index.failing}"))
                self._answer(flushes)
                if closing:
                    return
                continue
            try:
                if batch or self._acks or index.reindex:
                    await self._room.commit(batch, self._commit)
                stored = True
                while self._corrections:
                    self._leases.times_moved()
                    await clock.apply(index, self._corrections.pop(0))
                if closing or any(f.index for f in flushes) or index.index_due():
                    await self._room.commit_index()
            except (OSError, sqlite3.Error) as exc:
                if not store_fails(exc):
                    raise
                self._fail(exc, [] if stored else batch)
            self._answer(flushes)
            if closing:
                return

    def _answer(self, flushes: list[_Flush]) -> None:
        """Tell the flushes waiting that their records are committed (or why not)."""
        for f in flushes:
            if f.done.done():
                continue
            if self._index.failing is not None:
                f.done.set_exception(StorageError(f"the store is failing: {self._index.failing}"))
            else:
                f.done.set_result(None)

    def _fail(self, exc: BaseException, batch: list[OutboxRecord]) -> None:
        """The disk refuses: hold ``batch`` in memory until it works again."""
        first = self._index.fail(exc)
        self._hold(batch)
        if first:
            log.error(
                "the store is failing (%s): live lanes go on; up to %d records are held in"
                " memory, the oldest dropped and counted beyond; reopened every %.0f s",
                self._index.failing,
                self._config.queue_max_rows,
                FAILING_RETRY_S,
            )

    def _hold(self, batch: list[OutboxRecord]) -> None:
        """Keep the newest ``queue_max_rows`` records for the store; count the rest dropped."""
        excess = len(batch) - self._config.queue_max_rows
        if excess > 0:
            self._counts.discard("store_failing", excess)
            batch = batch[excess:]
        self._held = batch

    async def _reopened(self) -> bool:
        was = self._index.failing
        if not await self._index.reopened():
            return False
        self._room.reset()
        self._leases.clear()
        log.warning("the store works again (was: %s); %d held records go in now", was, self.held)
        return True

    async def _gather(self) -> tuple[list[OutboxRecord], list[_Flush], bool]:
        """The next group to commit (FIFO: nothing accepted before a flush or close is left out).

        An idle writer still wakes to commit the index when it is due.
        """
        batch: list[OutboxRecord] = []
        loop = asyncio.get_running_loop()
        if self._index.index_open:
            wait_s = self._index.index_wait_s()
            try:
                async with asyncio.timeout(min(wait_s, self._flush_interval_s) + 0.001):
                    item = await self._queue.get()
            except TimeoutError:
                return batch, [], False
        else:
            item = await self._queue.get()
        deadline = loop.time() + self._flush_interval_s
        while True:
            if item is None:
                return batch, [], True
            if isinstance(item, _Flush):
                return batch, [item], False
            if isinstance(item, ClockCorrection):
                self._corrections.append(item)  # after the rows queued before it
                return batch, [], False
            if isinstance(item, _Ack):
                self._acks.append(item)
            else:
                batch.append(item)
            if len(batch) + len(self._acks) >= self._config.flush_max_rows:
                return batch, [], False
            try:
                item = self._queue.get_nowait()  # the common case under load: no timer needed
            except asyncio.QueueEmpty:
                try:
                    async with asyncio.timeout_at(deadline):
                        item = await self._queue.get()
                except TimeoutError:
                    return batch, [], False

    async def _commit(self, batch: list[OutboxRecord]) -> None:
        """One group commit: the batch to the segment log, then into the open index transaction.

        All of it or none: a savepoint, and the log cut back on failure.
        """
        index = self._index
        if not (batch or self._acks or index.reindex):
            return
        now = time.time()
        acks, self._acks = self._acks, []
        kept: list[OutboxRecord] = []
        duplicates = 0
        async with index.tx:
            mark: Mark | None = None
            try:
                async with index.batch() as db:
                    kept, duplicates = await _new_readings(db, batch)
                    numbered = [(index.next_id + offset, r) for offset, r in enumerate(kept)]
                    if numbered:
                        await self._room.limit_log()
                        mark, placed = index.segments.append(numbered, now)
                        rows = [(i, r, now, p) for (i, r), p in zip(numbered, placed, strict=True)]
                        await index.insert(db, rows)
                    await db.executemany(
                        "DELETE FROM pending WHERE sink = ? AND record_id = ?",
                        [(a.sink, rid) for a in acks for rid in a.record_ids],
                    )
            except BaseException:
                index.undo(mark)
                self._acks[:0] = acks  # applied with the next attempt
                raise
            if self._config.synchronous == "full":
                await asyncio.to_thread(index.segments.sync)  # an fsync must not stall the loop
        self._counts.duplicates += duplicates
        for a in acks:
            self._leases.settled(a.sink, a.record_ids)
        index.next_id += len(kept)
        self._counts.committed += len(kept)
        self._counts.commits += 1
        event, self._committed = self._committed, asyncio.Event()
        event.set()


async def _new_readings(
    db: aiosqlite.Connection, batch: list[OutboxRecord]
) -> tuple[list[OutboxRecord], int]:
    """``batch`` without the records whose source key is held (or came earlier in it).

    A dropped duplicate still moves its stream's cursor: the reading it names is held.
    """
    wanted: dict[tuple[str, str], set[str]] = {}
    for r in batch:
        if r.source_key is not None:
            wanted.setdefault((r.device_id, r.stream), set()).add(r.source_key)
    if not wanted:
        return batch, 0
    held: set[tuple[str, str, str]] = set()
    for (device_id, stream), keys in wanted.items():
        marks = ", ".join("?" * len(keys))
        async with db.execute(
            "SELECT key FROM source_keys WHERE device_id = ? AND stream = ?"  # noqa: S608
            f" AND key IN ({marks})",
            (device_id, stream, *keys),
        ) as cur:
            held.update((device_id, stream, row[0]) for row in await cur.fetchall())
    kept: list[OutboxRecord] = []
    cursors: list[tuple[str, str, int]] = []
    for r in batch:
        if r.source_key is not None:
            key = (r.device_id, r.stream, r.source_key)
            if key in held:
                if r.source_cursor is not None:
                    cursors.append((r.device_id, r.stream, r.source_cursor))
                continue
            held.add(key)
        kept.append(r)
    await set_cursors(db, cursors)
    return kept, len(batch) - len(kept)
