"""The durable outbox: one SQLite file (WAL), one writer task with group commit, per-sink backlog.

A record is written once; each sink that wants it gets a ``pending`` row for it, which the sink
deletes (``ack``) only after its destination confirmed delivery. Reads for a sink come back
oldest first and stop at the first row that is waiting for a retry, so a sink never delivers a
device's rows out of order.

Space: past ``max_db_mb`` the retention policy evicts (``buffers.retention``). When SQLite says
the disk (or ``max_page_count``) is full, the writer evicts, then refuses raw waveforms while
the shortage lasts, keeps vitals flowing, and recovers by itself when room returns. Every row
it could not keep is counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import functools
import json
import logging
import os
import shutil
import sqlite3
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal, ParamSpec, Self, TypeVar

import aiosqlite

from buffers import retention
from buffers.errors import StorageError
from buffers.records import (
    OutboxRecord,
    OutboxStatistics,
    SetAside,
    SinkBacklog,
    StoredRecord,
)
from buffers.recovery import OpenReport, prepare
from buffers.segments import SEGMENT_MAX_BYTES, Mark, Placed, SegmentLog, folder_for

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Collection, Coroutine, Mapping, Sequence
    from pathlib import Path
    from types import TracebackType

log = logging.getLogger(__name__)

_INSERT_ITEM: Final = (
    "INSERT INTO items (id, ctx, seq, t0_s, shape, size, sinks, stored_s, seg, seg_offset)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_CONTEXT_FIELDS: Final = (
    "kind, device_id, stream, sample_rate_hz, dtype, encoding, boot_id, clock_offset_s,"
    " clock_synced, participant_id, session_id, backfilled"
)
_SAVEPOINT: Final = "wgw_batch"
_BUILT_MAX: Final = 20_000  # records kept built for leases that come back to them
_SELECT_RECORD: Final = (
    "r.id, r.kind, r.device_id, r.stream, r.seq, r.t0_s, r.sample_rate_hz, r.dtype, r.shape,"
    " r.payload, r.encoding, r.participant_id, r.session_id, r.seg, r.seg_offset, r.size,"
    " r.backfilled"
)
_LOW_WATER: Final = 0.8  # evict down to this fraction of the cap (then not again for a while)
_RECOVER_BYTES: Final = 1 << 20  # room needed before raw waveforms are accepted again
_FULL_RETRY_S: Final = 1.0
_FAILING_RETRY_S: Final = 2.0  # a failing store is reopened this often
_CLOSE_TIMEOUT_S: Final = 5.0
# SQLite's primary result codes that mean the storage itself fails (not a full disk)
_SQLITE_STORE_FAILURES: Final = frozenset({8, 10, 11, 14, 26})  # READONLY IOERR CORRUPT ...
_SQLITE_FULL: Final = 13
_SQLITE_IOERR: Final = 10  # what an ENOSPC while writing the WAL can also look like

Synchronous = Literal["normal", "full"]
_P = ParamSpec("_P")
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class _Ack:
    """Acknowledged rows, deleted from the backlog in the next group commit."""

    sink: str
    record_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ClockCorrection:
    """The wall clock jumped: move this boot's rows stamped with another, untrusted offset."""

    boot_id: str
    offset_s: float  # the new offset from the monotonic clock to UTC
    at_mono_s: float
    offset_before_s: float
    synced: bool | None
    done: asyncio.Future[int]  # resolved with the number of rows corrected


@dataclass(frozen=True, slots=True)
class _Flush:
    """Commit what was accepted before; with ``index``, also commit the SQLite index."""

    done: asyncio.Future[None]
    index: bool


# A record to store, acks to apply, a clock correction, a flush request, or None: close.
_QueueItem = OutboxRecord | _Ack | ClockCorrection | _Flush | None
_ContextKey = tuple[object, ...]


def _storage_errors(
    method: Callable[_P, Coroutine[Any, Any, _T]],
) -> Callable[_P, Coroutine[Any, Any, _T]]:
    """A read or update whose disk fails raises ``StorageError`` (sinks wait on it)."""

    @functools.wraps(method)
    async def guarded(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        try:
            return await method(*args, **kwargs)
        except (OSError, sqlite3.Error) as exc:
            if isinstance(exc, sqlite3.Error) and not _store_fails(exc):
                raise
            msg = f"the store cannot be read: {type(exc).__name__}: {exc}"
            raise StorageError(msg) from exc

    return guarded


class Outbox:
    """The SQLite outbox as an async context manager; reusable, not reentrant.

    Args:
        path: The database file; its folder is created if missing.
        subscriptions: For each sink, which records it delivers.
        flush_interval_ms: Longest time an accepted record waits for its commit.
        flush_max_rows: A commit happens as soon as this many records wait.
        queue_max_rows: Bound of the in-memory queue; ``put`` waits when it is full.
        synchronous: ``normal`` survives a crash of the process, ``full`` also a power loss,
            at the cost of an fsync per commit (SQLite's pragma, and the segment log's).
        max_db_mb: Size cap of the data (file and segments); ``None``: no cap but the disk.
        index_interval_s: How often the SQLite index of what the segment log holds commits
            (a crash in between rebuilds it from the log); ``flush(index=True)`` forces it.
        clock: Monotonic seconds for ``index_interval_s`` (a benchmark's simulated time).
    """

    def __init__(
        self,
        path: Path,
        subscriptions: Mapping[str, Callable[[OutboxRecord], bool]],
        *,
        flush_interval_ms: int = 1000,
        flush_max_rows: int = 500,
        queue_max_rows: int = 10_000,
        synchronous: Synchronous = "normal",
        busy_timeout_ms: int = 5000,
        max_db_mb: float | None = None,
        index_interval_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self._index_interval_s = index_interval_s
        self._clock = clock
        self._index_open = False
        self._index_opened_at = 0.0
        self._reindex = False
        self._contexts: dict[_ContextKey, int] = {}
        self._budget_bytes: int | None = None
        self._replayed = 0
        self._built: dict[int, OutboxRecord] = {}
        self._subscriptions = dict(subscriptions)
        self._flush_interval_s = flush_interval_ms / 1000.0
        self._flush_max_rows = flush_max_rows
        self._queue_max_rows = queue_max_rows
        self._synchronous = synchronous
        self._busy_timeout_ms = busy_timeout_ms
        self._cap_bytes = int(max_db_mb * 1024 * 1024) if max_db_mb else None
        segment_bytes = min(SEGMENT_MAX_BYTES, self._cap_bytes // 8) if self._cap_bytes else None
        self._segment_max_bytes = segment_bytes or SEGMENT_MAX_BYTES
        self._segments: SegmentLog | None = None
        self._lock = asyncio.Lock()
        self._stack: AsyncExitStack | None = None
        self._db: aiosqlite.Connection | None = None
        self._queue: asyncio.Queue[_QueueItem] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self._tx = asyncio.Lock()
        self._committed_event = asyncio.Event()
        self._next_id = 1
        self._accepted = 0
        self._committed = 0
        self._commits = 0
        self._backpressure_waits = 0
        self._discarded: dict[str, int] = {}
        self._duplicates = 0
        self._full = False
        self.opened: OpenReport | None = None
        self._set_aside: list[SetAside] = []  # unreadable files and batches found at open
        self._leased: dict[str, set[int]] = {sink: set() for sink in self._subscriptions}
        self._acks: list[_Ack] = []
        self._corrections: list[ClockCorrection] = []
        self._resume_after: dict[tuple[str, int], int] = {}  # (sink, after_id) -> last handed out
        self._failing: str | None = None  # why the disk refuses, while it does
        self._usable = asyncio.Event()
        self._usable.set()
        self._reopen_at = 0.0
        self._reopening = False
        self._held: list[OutboxRecord] = []  # records the failing store could not take yet
        self._last_statistics: OutboxStatistics | None = None

    # --- lifecycle ----------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._lock.locked():
            msg = "Outbox is not reentrant"
            raise RuntimeError(msg)
        await self._lock.acquire()
        stack = AsyncExitStack()
        try:
            stack.push_async_callback(self._close_store)
            await self._open_store()
            tg = await stack.enter_async_context(asyncio.TaskGroup())
            self._queue = asyncio.Queue(self._queue_max_rows)
            self._writer = tg.create_task(self._write_loop(), name="wgw.outbox.writer")
            stack.push_async_callback(self._stop_writer)
        except BaseException:
            await stack.aclose()
            self._db = None
            self._segments = None
            self._lock.release()
            raise
        self._stack = stack
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._stack is not None
        try:
            await self._stack.__aexit__(exc_type, exc, tb)
        finally:
            self._stack = None
            self._db = None
            self._segments = None
            self._writer = None
            self._index_open = False
            self._lock.release()

    async def _open_store(self) -> None:
        """The index and the segment log, checked, replayed, ready for the writer."""
        self.opened = await asyncio.to_thread(prepare, self.path)
        segments = SegmentLog(folder_for(self.path), max_bytes=self._segment_max_bytes)
        self._segments = segments
        self._set_aside = await asyncio.to_thread(segments.check)
        self._db = await self._open()

    async def _close_store(self) -> None:
        """Close what :meth:`_open_store` opened (on a failing disk, as far as it goes)."""
        db, self._db = self._db, None
        segments, self._segments = self._segments, None
        try:
            if db is not None:
                async with asyncio.timeout(_CLOSE_TIMEOUT_S):
                    await db.close()
        finally:
            if segments is not None:
                segments.close()

    async def _open(self) -> aiosqlite.Connection:
        db = await aiosqlite.connect(self.path, isolation_level=None)
        try:
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute(f"PRAGMA synchronous={self._synchronous.upper()}")
            await db.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_ms)}")
            self._db = db
            await self._load_contexts(db)
            self._replayed = await self._replay(db)
            self._set_aside += self._require_segments().set_aside
            await self._count_set_aside(db)
        except BaseException:
            self._db = None
            await db.close()
            raise
        return db

    async def _load_contexts(self, db: aiosqlite.Connection) -> None:
        self._contexts.clear()
        async with db.execute(f"SELECT id, {_CONTEXT_FIELDS} FROM contexts") as cur:  # noqa: S608
            for row in await cur.fetchall():
                self._contexts[tuple(row[1:])] = row[0]

    async def _count_set_aside(self, db: aiosqlite.Connection) -> None:
        """Count what the open found unreadable (persisted), and say it in one log line."""
        if not self._set_aside:
            return
        total = sum(s.bytes for s in self._set_aside)
        await db.executemany(
            "INSERT INTO counters (name, value) VALUES (?, ?)"
            " ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
            [("set_aside.files", len(self._set_aside)), ("set_aside.bytes", total)],
        )
        log.error(
            "outbox: %d unreadable part(s) of the segment log set aside (%d bytes): %s",
            len(self._set_aside),
            total,
            "; ".join(f"{s.name}: {s.reason}" for s in self._set_aside),
        )

    async def _replay(self, db: aiosqlite.Connection) -> int:
        """Put what the segment log holds beyond the index into it (after a crash); how many.

        Beyond means past the newest id the index has held (``meta.indexed_through``, kept at
        each index commit), not only past its newest row: rows evicted since must stay gone.
        """
        async with db.execute(
            "SELECT MAX(COALESCE((SELECT MAX(id) FROM items), 0),"
            " COALESCE((SELECT CAST(value AS INTEGER) FROM meta"
            " WHERE key = 'indexed_through'), 0))"
        ) as cur:
            row = await cur.fetchone()
        indexed = row[0] if row else 0
        replayed = await asyncio.to_thread(lambda: list(self._require_segments().replay(indexed)))
        # the same id twice: a batch appended again after the index refused it the first time
        by_id = {r.id: r for r in replayed}
        self._next_id = max([indexed, *by_id]) + 1
        if not by_id:
            return 0
        async with self._own_transaction():
            await self._insert(db, [(r.id, r.record, r.stored_s, r.placed) for r in by_id.values()])
        log.warning("outbox: %d rows since the last index commit rebuilt from the log", len(by_id))
        return len(by_id)

    async def _context(self, db: aiosqlite.Connection, record_id: int, r: OutboxRecord) -> int:
        """The id of the row holding what ``r`` shares with its neighbours (created if new)."""
        c = r.clock
        key: _ContextKey = (
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
        return await self._context_of(db, key, record_id)

    async def _context_of(self, db: aiosqlite.Connection, key: _ContextKey, first_id: int) -> int:
        ctx = self._contexts.get(key)
        if ctx is None:
            cur = await db.execute(
                f"INSERT INTO contexts ({_CONTEXT_FIELDS}, first_id)"  # noqa: S608 - constants
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (*key, first_id),
            )
            assert cur.lastrowid is not None
            ctx = self._contexts[key] = cur.lastrowid
        return ctx

    async def _insert(
        self,
        db: aiosqlite.Connection,
        rows: Sequence[tuple[int, OutboxRecord, float, Placed]],
    ) -> None:
        """Index rows (id, record, stored at, where its payload lies) and their pending rows."""
        items: list[tuple[object, ...]] = []
        pending: list[tuple[str, int]] = []
        keys: list[tuple[str, str, str, int]] = []
        cursors: list[tuple[str, str, int]] = []
        for record_id, r, stored_s, placed in rows:
            if r.source_key is not None:
                keys.append((r.device_id, r.stream, r.source_key, record_id))
            if r.source_cursor is not None:
                cursors.append((r.device_id, r.stream, r.source_cursor))
            ctx = await self._context(db, record_id, r)
            shape = json.dumps(list(r.shape)) if r.shape is not None else None
            sinks = [sink for sink, wants in self._subscriptions.items() if wants(r)]
            items.append(
                (
                    record_id,
                    ctx,
                    r.seq,
                    r.t0_s,
                    shape,
                    len(r.payload),
                    len(sinks),
                    stored_s,
                    placed.seg,
                    placed.offset,
                )
            )
            pending.extend((sink, record_id) for sink in sinks)
        await db.executemany(_INSERT_ITEM, items)
        await db.executemany("INSERT INTO pending (sink, record_id) VALUES (?, ?)", pending)
        if keys:  # rare (timestamped readings): no round trip to SQLite's thread otherwise
            await db.executemany(
                "INSERT OR IGNORE INTO source_keys (device_id, stream, key, record_id)"
                " VALUES (?, ?, ?, ?)",
                keys,
            )
        await _set_cursors(db, cursors)

    @property
    def replayed(self) -> int:
        """Rows rebuilt from the segment log at open (the index had not committed them)."""
        return self._replayed

    @property
    def uncommitted(self) -> int:
        """Records accepted and not yet committed (what a crash now would lose)."""
        return self._accepted - self._committed - sum(self._discarded.values()) - self._duplicates

    @property
    def last_id(self) -> int:
        """The id of the newest committed row (0: none)."""
        return self._next_id - 1

    async def limit_pages(self, max_pages: int) -> None:
        """Cap the file at ``max_pages`` pages (``PRAGMA max_page_count``).

        SQLite then answers SQLITE_FULL exactly as on a full card, and the segment log ENOSPC
        once the file's pages and its bytes together pass the same size: this is how tests
        make the disk full, and how a deployment that shares a small disk keeps a ceiling.
        """
        db = self._require_db()
        async with self._tx:
            await self._commit_index()
            await db.execute(f"PRAGMA max_page_count={int(max_pages)}")
            page_size = (await retention.usage(db)).page_size
        # the segment log shares the budget: pages in use plus segment bytes
        self._budget_bytes = int(max_pages) * page_size

    async def _stop_writer(self) -> None:
        """Let the writer commit everything accepted, then end."""
        await self._queue.put(None)

    # --- writing ------------------------------------------------------------------------------

    async def put(self, record: OutboxRecord) -> None:
        """Accept a record; it is committed within the flush interval.

        Waits while the queue is full (back-pressure, counted).

        Raises:
            StorageError: The outbox is closed or its writer has failed.
        """
        writer = self._writer
        if writer is None or writer.done():
            msg = "outbox is not accepting records (closed, or its writer failed)"
            raise StorageError(msg)
        if self._queue.full():
            self._backpressure_waits += 1
        await self._queue.put(record)
        self._accepted += 1

    async def flush(self, *, index: bool = True) -> None:
        """Commit everything accepted so far, now.

        ``index``: also commit the SQLite index, so that other connections (``wgw queue``,
        ``wgw export``) see the rows; without it, the rows are in the segment log (durable)
        and visible to this outbox's own reads.

        Raises:
            StorageError: The outbox is closed or its writer has failed (nothing would ever
                answer the flush), or the store is failing (the records are held meanwhile).
        """
        writer = self._writer
        if writer is None or writer.done():
            msg = "outbox is not writing (closed, or its writer failed)"
            raise StorageError(msg)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Flush(done, index))
        await asyncio.wait([done, writer], return_when=asyncio.FIRST_COMPLETED)
        if not done.done():
            msg = "the outbox writer stopped before committing"
            raise StorageError(msg)
        done.result()  # StorageError: the store is failing

    async def wait_committed(self, timeout_s: float) -> None:
        """Return after the next commit, or after ``timeout_s``."""
        event = self._committed_event
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await event.wait()

    async def _write_loop(self) -> None:
        while True:
            batch, flushes, closing = await self._gather()
            if self._held:
                batch, self._held = [*self._held, *batch], []
            stored = False
            if self._failing is not None and not await self._reopened():
                self._hold(batch)
                while self._corrections:  # the caller tries again later
                    c = self._corrections.pop(0)
                    c.done.set_exception(StorageError(f"the store is failing: {self._failing}"))
                self._answer(flushes)
                if closing:
                    return
                continue
            try:
                if batch or self._acks or self._reindex:
                    await self._commit_with_room(batch)
                stored = True
                while self._corrections:
                    await self._correct_clock(self._corrections.pop(0))
                if closing or any(f.index for f in flushes) or self._index_due():
                    await self._commit_index_unless_full()
            except (OSError, sqlite3.Error) as exc:
                if not _store_fails(exc):
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
            if self._failing is not None:
                f.done.set_exception(StorageError(f"the store is failing: {self._failing}"))
            else:
                f.done.set_result(None)

    def _fail(self, exc: BaseException, batch: list[OutboxRecord]) -> None:
        """The disk refuses: hold ``batch`` in memory until it works again."""
        first = self._failing is None
        self._failing = f"{type(exc).__name__}: {exc}"
        self._usable.clear()
        self._reopen_at = self._clock() + _FAILING_RETRY_S
        self._hold(batch)
        if first:
            log.error(
                "the store is failing (%s): live lanes go on; up to %d records are held in"
                " memory, the oldest dropped and counted beyond; reopened every %.0f s",
                self._failing,
                self._queue_max_rows,
                _FAILING_RETRY_S,
            )

    def _hold(self, batch: list[OutboxRecord]) -> None:
        """Keep the newest ``queue_max_rows`` records for the store; count the rest dropped."""
        excess = len(batch) - self._queue_max_rows
        if excess > 0:
            self._discarded["store_failing"] = self._discarded.get("store_failing", 0) + excess
            batch = batch[excess:]
        self._held = batch

    async def _reopened(self) -> bool:
        """Try the store again (a remounted card, a disk writable again), every few seconds."""
        if self._clock() < self._reopen_at:
            return False
        self._reopen_at = self._clock() + _FAILING_RETRY_S
        with contextlib.suppress(Exception):  # the old files are on a disk that failed
            await self._close_store()
        self._reopening = True
        try:
            await self._open_store()
        except (OSError, sqlite3.Error) as exc:
            if not _store_fails(exc):
                raise
            with contextlib.suppress(Exception):
                await self._close_store()
            self._failing = f"{type(exc).__name__}: {exc}"
            return False
        finally:
            self._reopening = False
        self._index_open, self._reindex, self._full = False, False, False
        self._built.clear()
        for leased in self._leased.values():
            leased.clear()
        self._resume_after.clear()
        log.warning(
            "the store works again (was: %s); %d held records go in now",
            self._failing,
            len(self._held),
        )
        self._failing = None
        self._usable.set()
        return True

    async def _commit_index_unless_full(self) -> None:
        """The writer's index commit: a full disk leaves the rows in the log, never raises."""
        try:
            async with self._tx:
                await self._commit_index()
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode not in (_SQLITE_FULL, _SQLITE_IOERR):
                raise
            db = self._require_db()
            if not db.in_transaction:  # rolled back: the log still has it all
                self._index_open, self._reindex = False, True
                await self._load_contexts(db)
            self._full = True  # the next commit evicts first
            log.error("the index could not commit (%s): it is retried; the log holds the rows", exc)

    def _index_due(self) -> bool:
        return self._index_open and (
            self._clock() - self._index_opened_at >= self._index_interval_s
        )

    async def _gather(self) -> tuple[list[OutboxRecord], list[_Flush], bool]:
        """The next group to commit.

        A group ends when the interval ends, the group is full, a flush is asked for, or the
        outbox closes (FIFO, so nothing accepted before either is left out). An idle writer
        still wakes to commit the index when it is due.
        """
        batch: list[OutboxRecord] = []
        loop = asyncio.get_running_loop()
        if self._index_open:
            wait_s = max(0.0, self._index_opened_at + self._index_interval_s - self._clock())
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
            if len(batch) + len(self._acks) >= self._flush_max_rows:
                return batch, [], False
            try:
                item = self._queue.get_nowait()  # the common case under load: no timer needed
            except asyncio.QueueEmpty:
                try:
                    async with asyncio.timeout_at(deadline):
                        item = await self._queue.get()
                except TimeoutError:
                    return batch, [], False

    async def _commit_with_room(self, batch: list[OutboxRecord]) -> None:
        """Commit, making room by the retention policy when the disk or the cap says so.

        Never raises for a full disk. Steps, each tried only if the commit still fails: evict
        (delivered rows, then undelivered waveforms), refuse this batch's raw waveforms
        (counted), evict the oldest undelivered vitals, then wait and retry, holding the batch
        (the bounded queue in front applies back-pressure).
        """
        if self._full:
            if await self._room_returned():
                self._full = False
                log.warning("storage has room again: accepting raw waveforms")
            else:
                batch = self._refuse_waveforms(batch)
        steps = iter(("evict", "refuse_waveforms", "evict_vitals"))
        while True:
            if await self._commit_unless_full(batch):
                break
            if not self._full:
                self._full = True
                log.error("storage is full: evicting, refusing raw waveforms until room returns")
            step = next(steps, None)
            if step is None:
                await asyncio.sleep(_FULL_RETRY_S)
                steps = iter(("evict", "evict_vitals"))
            else:
                batch = await self._make_room(step, batch)
        if self._cap_bytes is not None:
            used = await retention.used_bytes(self._require_db(), self._segments)
            if used > self._cap_bytes:
                await self._evict(int(self._cap_bytes * _LOW_WATER), len(retention.TIERS))

    async def _commit_unless_full(self, batch: list[OutboxRecord]) -> bool:
        """Commit; False when SQLite or the segment log found the disk (or budget) full."""
        try:
            if batch or self._acks or self._reindex:
                await self._commit(batch)
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode != _SQLITE_FULL:
                raise
            return False
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
            return False
        return True

    async def _make_room(self, step: str, batch: list[OutboxRecord]) -> list[OutboxRecord]:
        if step == "refuse_waveforms":
            return self._refuse_waveforms(batch)
        need = max(2 * sum(len(r.payload) for r in batch), 64 * 1024)
        target = await retention.used_bytes(self._require_db(), self._segments) - need
        tiers = retention.WAVEFORM_TIERS if step == "evict" else len(retention.TIERS)
        await self._evict(target, tiers, now=True)
        return batch

    def _refuse_waveforms(self, batch: list[OutboxRecord]) -> list[OutboxRecord]:
        kept = [r for r in batch if r.kind != "waveform"]
        if len(kept) < len(batch):
            self._discarded["storage_full"] = (
                self._discarded.get("storage_full", 0) + len(batch) - len(kept)
            )
        return kept

    async def _room_returned(self) -> bool:
        usage = await retention.usage(self._require_db())
        disk_free = shutil.disk_usage(self.path.parent).free
        room = usage.room_bytes
        if self._budget_bytes is not None:
            used = usage.used_bytes + self._require_segments().total_bytes()
            room = min(room, self._budget_bytes - used)
        return room >= _RECOVER_BYTES and disk_free >= _RECOVER_BYTES

    async def _evict(self, target_used_bytes: int, tiers: int, *, now: bool = False) -> None:
        """Evict down to ``target_used_bytes``.

        Under the cap (``now`` false) the deletions ride the open index transaction, written
        with it once a minute, and the files they empty go after its commit. On a full disk
        (``now``) they commit at once and the files go at once: the space is needed now.
        """
        db = self._require_db()
        segments = self._require_segments()
        async with self._tx:
            if now:
                await self._commit_index()
            else:
                await self._open_index(db)
            try:
                evicted = await retention.evict(
                    db, target_used_bytes=target_used_bytes, tiers=tiers, segments=segments
                )
            except sqlite3.OperationalError as exc:
                log.error("eviction failed: %s", exc)
                return
            if now:
                await self._purge()
        for key, count in evicted.items():
            log.warning("retention: evicted %d %s rows", count, key)

    async def _commit(self, batch: Sequence[OutboxRecord]) -> None:
        """One group commit: the batch to the segment log, then into the open index transaction.

        All of it or none: a savepoint, and the log cut back on failure.
        """
        db = self._require_db()
        segments = self._require_segments()
        now = time.time()
        acks, self._acks = self._acks, []
        numbered: list[tuple[int, OutboxRecord]] = []
        async with self._tx:
            if self._reindex:
                self._replayed += await self._replay(db)
                self._reindex = False
            await self._open_index(db)
            await db.execute(f"SAVEPOINT {_SAVEPOINT}")
            mark: Mark | None = None
            try:
                batch, duplicates = await self._new_readings(db, batch)
                numbered = [(self._next_id + offset, r) for offset, r in enumerate(batch)]
                if numbered:
                    if self._budget_bytes is not None:
                        room = self._budget_bytes - (await retention.usage(db)).used_bytes
                        segments.limit_bytes(room)
                    mark, placed = segments.append(numbered, now)
                    rows = [(i, r, now, p) for (i, r), p in zip(numbered, placed, strict=True)]
                    await self._insert(db, rows)
                await db.executemany(
                    "DELETE FROM pending WHERE sink = ? AND record_id = ?",
                    [(a.sink, rid) for a in acks for rid in a.record_ids],
                )
                await db.execute(f"RELEASE {_SAVEPOINT}")
            except BaseException:
                await self._undo_batch(db, mark)
                self._acks[:0] = acks  # applied with the next attempt
                raise
            if self._synchronous == "full":
                await asyncio.to_thread(segments.sync)  # an fsync must not stall the loop
        self._duplicates += duplicates
        for a in acks:
            self._leased[a.sink].difference_update(a.record_ids)
        self._next_id += len(batch)
        self._committed += len(batch)
        self._commits += 1
        event, self._committed_event = self._committed_event, asyncio.Event()
        event.set()

    async def _new_readings(
        self, db: aiosqlite.Connection, batch: Sequence[OutboxRecord]
    ) -> tuple[list[OutboxRecord], int]:
        """``batch`` without the records whose source key is held (or came earlier in it).

        A dropped duplicate still moves its stream's cursor: the reading it names is held.
        """
        wanted: dict[tuple[str, str], set[str]] = {}
        for r in batch:
            if r.source_key is not None:
                wanted.setdefault((r.device_id, r.stream), set()).add(r.source_key)
        if not wanted:
            return list(batch), 0
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
        await _set_cursors(db, cursors)
        return kept, len(batch) - len(kept)

    @_storage_errors
    async def cursor(self, device_id: str, stream: str) -> int | None:
        """The newest source cursor held for a device's stream (where its records stand)."""
        async with self._require_db().execute(
            "SELECT cursor FROM source_cursors WHERE device_id = ? AND stream = ?",
            (device_id, stream),
        ) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else None

    async def _undo_batch(self, db: aiosqlite.Connection, mark: Mark | None) -> None:
        """Take a failed batch back out of the index and the log."""
        if mark is not None:
            self._require_segments().undo(mark)
        if db.in_transaction:
            with contextlib.suppress(sqlite3.OperationalError):
                await db.execute(f"ROLLBACK TO {_SAVEPOINT}")
                await db.execute(f"RELEASE {_SAVEPOINT}")
        else:
            # SQLite rolled the whole index transaction back (it may, on a full disk): what
            # it held is still in the log; the next commit replays it.
            self._index_open = False
            self._reindex = True
            await self._load_contexts(db)

    async def _open_index(self, db: aiosqlite.Connection) -> None:
        if not self._index_open:
            await db.execute("BEGIN IMMEDIATE")
            self._index_open = True
            self._index_opened_at = self._clock()

    async def _commit_index(self) -> None:
        """Commit the index transaction, after the log it points into is on disk.

        The caller holds ``_tx``.
        """
        if not self._index_open:
            return
        db = self._require_db()
        segments = self._require_segments()
        await asyncio.to_thread(segments.sync)  # an fsync must not stall the loop
        await db.execute(
            "INSERT INTO meta (key, value) VALUES ('indexed_through', ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (str(self._next_id - 1),),
        )
        await db.execute("COMMIT")
        self._index_open = False
        if self._synchronous != "full":
            # SQLite's NORMAL commit is not durable until the WAL is: once a minute it is made
            # so, and a cut then loses at most one index interval of rows and of acks.
            await asyncio.to_thread(self._sync_index_files)
        await self._purge(index_synced=True)  # files the committed index no longer holds

    async def _purge(self, *, index_synced: bool = False) -> None:
        """Remove the retired segment files, once the index that forgot them is on disk.

        With ``synchronous=normal`` SQLite's commit is not yet durable: a power cut would bring
        back an index whose rows live in the removed files. So the WAL (and the file, which a
        checkpoint may have written) are fsynced first.
        """
        segments = self._require_segments()
        if not segments.retired:
            return
        if self._synchronous != "full" and not index_synced:
            await asyncio.to_thread(self._sync_index_files)
        await asyncio.to_thread(segments.purge)

    def _sync_index_files(self) -> None:
        for name in (self.path.name + "-wal", self.path.name):
            try:
                fd = os.open(self.path.with_name(name), os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    async def correct_clock(
        self,
        boot_id: str,
        offset_s: float,
        *,
        at_mono_s: float,
        offset_before_s: float,
        synced: bool | None,
    ) -> int:
        """After a wall-clock jump: move this boot's untrusted rows onto ``offset_s``.

        Rows stamped with another offset while the clock was not synchronised are shifted by
        the difference (exact: the monotonic clock did not move), and the event is recorded.
        Runs in the writer after everything accepted before it is committed; returns how many
        rows moved. Rows already delivered move too: a ``full`` sync sends them corrected.
        """
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        await self._queue.put(
            ClockCorrection(boot_id, offset_s, at_mono_s, offset_before_s, synced, done)
        )
        return await done

    async def _correct_clock(self, c: ClockCorrection) -> None:
        self._built.clear()  # rows' times move
        try:
            async with self._tx:
                await self._commit_index()
                async with self._own_transaction() as db:
                    moved = await self._move_untrusted(db, c)
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

    async def _move_untrusted(self, db: aiosqlite.Connection, c: ClockCorrection) -> int:
        """Move this boot's untrusted rows of another offset onto the new one; how many.

        Each such context's rows get a context with the new offset and their times shifted by
        the difference.
        """
        async with db.execute(
            f"SELECT id, first_id, {_CONTEXT_FIELDS} FROM contexts"  # noqa: S608 - constants
            " WHERE boot_id = ? AND clock_synced IS NOT 1 AND abs(clock_offset_s - ?) > 0.001",
            (c.boot_id, c.offset_s),
        ) as cur:
            stale = list(await cur.fetchall())
        moved = 0
        for old_ctx, first_id, *fields in stale:
            key: _ContextKey = (*fields[:7], c.offset_s, *fields[8:])
            new_ctx = await self._context_of(db, key, first_id)
            shift = c.offset_s - fields[7]
            cur = await db.execute(
                "UPDATE items SET t0_s = t0_s + ?, clock_corrected_s = clock_corrected_s + ?,"
                " ctx = ? WHERE id >= ? AND ctx = ?",
                (shift, shift, new_ctx, first_id, old_ctx),
            )
            moved += cur.rowcount
        return moved

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction beside the writer's, for rare writes (the study context)."""
        async with self._tx:
            await self._commit_index()
            async with self._own_transaction() as db:
                yield db

    @contextlib.asynccontextmanager
    async def _own_transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """BEGIN IMMEDIATE ... COMMIT; on failure a rollback, and the contexts read again.

        The caller holds ``_tx`` and no index transaction is open.
        """
        db = self._require_db()
        await db.execute("BEGIN IMMEDIATE")
        try:
            yield db
            await db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.OperationalError):
                await db.execute("ROLLBACK")
            await self._load_contexts(db)
            raise

    @_storage_errors
    async def query(self, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]:
        """Rows of one read (WAL: it does not wait for the writer)."""
        async with self._require_db().execute(sql, params) as cur:
            return list(await cur.fetchall())

    # --- delivery -----------------------------------------------------------------------------

    @_storage_errors
    async def lease(
        self,
        sink: str,
        max_rows: int,
        max_bytes: int | None = None,
        *,
        after_id: int = 0,
        device_id: str | None = None,
    ) -> list[StoredRecord]:
        """The sink's oldest undelivered rows, up to the first one waiting for a retry.

        At most ``max_rows`` rows and (beyond the first row) ``max_bytes`` payload bytes; only
        rows after ``after_id`` (a sink with two lanes leases each from its own start), and
        only ``device_id``'s when given (a request carries one device's). Rows leased and not
        yet acked or nacked are not offered again in this process; after a restart they are.
        """
        db = self._require_db()
        leased = self._leased[sink]
        # A snapshot taken before the query: an ack committed while the query runs removes its
        # rows from ``leased``, but the query may still have read them as pending.
        excluded = set(leased)
        # Every pending row up to the last one handed out is still in flight, unless one was
        # given back since (release, nack): then scan from the oldest again. (Not so for one
        # device's rows: the other devices' rows before them are not in flight.)
        after = after_id
        if device_id is None:
            after = max(after_id, self._resume_after.get((sink, after_id), 0))
        device = " AND r.device_id = ?" if device_id is not None else ""
        async with db.execute(
            f"SELECT {_SELECT_RECORD}, p.next_attempt_s FROM pending p"  # noqa: S608 - constants
            " JOIN records r ON r.id = p.record_id"
            f" WHERE p.sink = ? AND p.dead = 0 AND p.record_id > ?{device}"
            " ORDER BY p.record_id LIMIT ?",
            (
                sink,
                after,
                *([device_id] if device_id is not None else []),
                max_rows + (len(excluded) if after == after_id else 0),
            ),
        ) as cur:
            rows = await cur.fetchall()
        now = time.time()
        taken: list[sqlite3.Row] = []
        size = 0
        for row in rows:
            if row[0] in excluded:
                continue
            size += row[15]
            full = len(taken) == max_rows or (taken and max_bytes and size > max_bytes)
            if row[17] > now or full:
                break
            taken.append(row)
        out = self._records(taken)
        leased.update(r.id for r in out)
        if out and device_id is None:
            self._resume_after[(sink, after_id)] = out[-1].id
        return out

    @_storage_errors
    async def history(
        self, wants: Callable[[OutboxRecord], bool], after_id: int, max_rows: int
    ) -> list[StoredRecord]:
        """Retained rows after ``after_id`` that ``wants`` accepts, delivered or not.

        For a ``full`` resend: it reads, and changes no sink's backlog or cursor.
        """
        db = self._require_db()
        async with db.execute(
            f"SELECT {_SELECT_RECORD} FROM records r WHERE r.id > ? ORDER BY r.id LIMIT ?",  # noqa: S608
            (after_id, max_rows),
        ) as cur:
            rows = await cur.fetchall()
        return [r for r in self._records(list(rows)) if wants(r.record)]

    @_storage_errors
    async def count_retained(self, kind: str, streams: Collection[str]) -> int:
        """How many rows of ``kind`` and ``streams`` the file holds, delivered or not."""
        marks = ", ".join("?" * len(streams))
        async with self._require_db().execute(
            f"SELECT COUNT(*) FROM records WHERE kind = ? AND stream IN ({marks})",  # noqa: S608
            (kind, *streams),
        ) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def ack(self, sink: str, record_ids: Sequence[int]) -> None:
        """The sink's destination confirmed these rows: they are delivered.

        The deletion rides on the next group commit (one transaction a flush interval, not one
        per ack: SD cards wear by the page). Until then the rows stay out of this process's
        leases; a crash before that commit re-offers them, which at-least-once allows.
        """
        if record_ids:
            await self._queue.put(_Ack(sink, tuple(record_ids)))

    async def nack(
        self, sink: str, record_ids: Sequence[int], retry_at_s: float, error: str
    ) -> None:
        """Delivery failed but may succeed later: offer the rows again at ``retry_at_s``."""
        await self._update(
            sink,
            record_ids,
            "UPDATE pending SET attempts = attempts + 1, next_attempt_s = ?, last_error = ?"
            " WHERE sink = ? AND record_id = ?",
            (retry_at_s, error),
        )

    async def dead_letter(self, sink: str, record_ids: Sequence[int], error: str) -> None:
        """Delivery can never succeed: park the rows, counted, for a person to look at."""
        await self._update(
            sink,
            record_ids,
            "UPDATE pending SET attempts = attempts + 1, dead = 1, last_error = ?"
            " WHERE sink = ? AND record_id = ?",
            (error,),
        )

    async def release(self, sink: str, record_ids: Sequence[int]) -> None:
        """Give leased rows back untried: they are offered again, in order, by the next lease."""
        self._leased[sink].difference_update(record_ids)
        if record_ids:
            self._forget_resume(sink)

    @_storage_errors
    async def _update(
        self, sink: str, record_ids: Sequence[int], sql: str, params: tuple[object, ...]
    ) -> None:
        async with self._tx:
            await self._commit_index()
            async with self._own_transaction() as db:
                await db.executemany(sql, [(*params, sink, rid) for rid in record_ids])
        self._leased[sink].difference_update(record_ids)
        self._forget_resume(sink)

    def _forget_resume(self, sink: str) -> None:
        """Rows of ``sink`` were given back: every lane scans from its start again."""
        for key in [k for k in self._resume_after if k[0] == sink]:
            del self._resume_after[key]

    @_storage_errors
    async def first_pending_since(self, sink: str, t0_s: float) -> int | None:
        """The id of the sink's oldest pending row whose time is ``t0_s`` or later, if any.

        Scans the sink's backlog once (a sink asks when it splits into lanes, after an outage).
        """
        async with self._require_db().execute(
            "SELECT MIN(p.record_id) FROM pending p JOIN records r ON r.id = p.record_id"
            " WHERE p.sink = ? AND p.dead = 0 AND r.t0_s >= ?",
            (sink, t0_s),
        ) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row and row[0] is not None else None

    @_storage_errors
    async def has_pending_before(self, sink: str, t0_s: float) -> bool:
        """Whether the sink still has a pending row (dead letters aside) older than ``t0_s``."""
        async with self._require_db().execute(
            "SELECT 1 FROM pending p JOIN records r ON r.id = p.record_id"
            " WHERE p.sink = ? AND p.dead = 0 AND r.t0_s < ? LIMIT 1",
            (sink, t0_s),
        ) as cur:
            row = await cur.fetchone()
        return row is not None

    # --- status -------------------------------------------------------------------------------

    async def statistics(self) -> OutboxStatistics:
        """Counters since open, each sink's backlog, evictions since the file was created.

        While the store fails: the counters, and the rest as last read.
        """
        try:
            stats = await self._read_statistics()
        except StorageError:
            if self._failing is None:
                raise
            last = self._last_statistics or OutboxStatistics(
                accepted=0,
                committed=0,
                commits=0,
                backpressure_waits=0,
                total_rows=0,
                backlog={sink: SinkBacklog(0, 0) for sink in self._subscriptions},
                evicted={},
                discarded={},
                storage_full=False,
                used_bytes=0,
                corrupt_recoveries=0,
            )
            return dataclasses.replace(  # what is counted in memory, the rest as last read
                last,
                accepted=self._accepted,
                committed=self._committed,
                commits=self._commits,
                discarded=dict(self._discarded),
                store_failing=self._failing,
                held=len(self._held),
            )
        self._last_statistics = stats
        return stats

    @_storage_errors
    async def _read_statistics(self) -> OutboxStatistics:
        db = self._require_db()
        backlog = {sink: SinkBacklog(0, 0) for sink in self._subscriptions}
        now = time.time()
        async with db.execute(
            "SELECT p.sink, SUM(p.dead = 0), SUM(p.dead = 1),"
            " SUM(CASE WHEN p.dead = 0 THEN r.size ELSE 0 END),"
            " MIN(CASE WHEN p.dead = 0 THEN r.stored_s END)"
            " FROM pending p JOIN records r ON r.id = p.record_id GROUP BY p.sink"
        ) as cur:
            for sink, pending, dead, size, oldest in await cur.fetchall():
                age = now - oldest if oldest is not None else None
                backlog[sink] = SinkBacklog(pending, dead, size or 0, age)
        async with db.execute("SELECT COUNT(*) FROM records") as cur:
            row = await cur.fetchone()
        async with db.execute("SELECT name, value FROM counters") as cur:
            counters: dict[str, int] = {str(row[0]): int(row[1]) for row in await cur.fetchall()}
        used = await retention.used_bytes(db, self._segments)
        return OutboxStatistics(
            accepted=self._accepted,
            committed=self._committed,
            commits=self._commits,
            backpressure_waits=self._backpressure_waits,
            total_rows=row[0] if row else 0,
            backlog=backlog,
            evicted={
                k.removeprefix("evicted."): v
                for k, v in counters.items()
                if k.startswith("evicted.")
            },
            discarded=dict(self._discarded),
            storage_full=self._full,
            used_bytes=used,
            corrupt_recoveries=counters.get("corrupt_recoveries", 0),
            evicted_samples={
                k.removeprefix("evicted_samples."): v
                for k, v in counters.items()
                if k.startswith("evicted_samples.")
            },
            duplicates=self._duplicates,
            held=len(self._held),
            set_aside=tuple(self._set_aside),
            set_aside_files=counters.get("set_aside.files", 0),
            index_rebuilt_from=(
                str(self.opened.moved_aside_to)
                if self.opened is not None and self.opened.moved_aside_to is not None
                else None
            ),
        )

    def _records(self, rows: Sequence[Sequence[Any]]) -> list[StoredRecord]:
        """Records from ``_SELECT_RECORD`` rows, their payloads read from the log together.

        A sink leases the same rows again while it waits (pacing, retries): the records built
        last are kept (rows do not change but for clock corrections, which empty the cache).
        """
        cache = self._built
        missing = [row for row in rows if row[0] not in cache]
        in_log = [row for row in missing if row[13] is not None]
        payloads = dict(
            zip(
                (row[0] for row in in_log),
                self._require_segments().read_many([(r[13], r[14], r[15]) for r in in_log]),
                strict=True,
            )
        )
        for row in missing:
            cache[row[0]] = _record(row, payloads.get(row[0]) or bytes(row[9] or b""))
        while len(cache) > _BUILT_MAX:
            del cache[next(iter(cache))]  # the oldest built first (dicts keep insertion order)
        return [StoredRecord(row[0], cache[row[0]]) for row in rows]

    def _require_segments(self) -> SegmentLog:
        if self._segments is None:
            msg = "outbox is not open"
            raise StorageError(msg)
        return self._segments

    def _require_db(self) -> aiosqlite.Connection:
        if self._failing is not None and not self._reopening:
            msg = f"the store is failing: {self._failing}"
            raise StorageError(msg)
        if self._db is None:
            msg = "outbox is not open"
            raise StorageError(msg)
        return self._db

    async def wait_usable(self) -> None:
        """Return once the store works (again)."""
        await self._usable.wait()

    def forget_leases(self, sink: str) -> None:
        """The sink starts over (after a storage error): its rows in flight are offered again."""
        self._leased[sink].clear()
        self._forget_resume(sink)


def _store_fails(exc: BaseException) -> bool:
    """Whether ``exc`` says the storage itself fails (I/O error, read-only), not that it is full."""
    if isinstance(exc, sqlite3.Error):
        return (getattr(exc, "sqlite_errorcode", 0) & 0xFF) in _SQLITE_STORE_FAILURES
    return isinstance(exc, OSError) and exc.errno != errno.ENOSPC


def _record(row: Sequence[Any], payload: bytes) -> OutboxRecord:
    shape = tuple(json.loads(row[8])) if row[8] is not None else None
    return OutboxRecord(
        kind=row[1],
        device_id=row[2],
        stream=row[3],
        seq=row[4],
        t0_s=row[5],
        payload=payload,
        sample_rate_hz=row[6],
        dtype=row[7],
        shape=shape,
        encoding=row[10],
        participant_id=row[11],
        session_id=row[12],
        backfilled=bool(row[16]),
    )


async def _set_cursors(db: aiosqlite.Connection, cursors: Sequence[tuple[str, str, int]]) -> None:
    """Each (device, stream)'s cursor to the last of ``cursors`` that names it."""
    if not cursors:
        return
    await db.executemany(
        "INSERT INTO source_cursors (device_id, stream, cursor) VALUES (?, ?, ?)"
        " ON CONFLICT (device_id, stream) DO UPDATE SET cursor = excluded.cursor",
        cursors,
    )
