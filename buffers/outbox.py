"""The durable outbox: one SQLite file (WAL), one writer task with group commit, per-sink backlog.

A record is written once; each sink that subscribes to its stream gets a ``pending`` row for it,
which the sink deletes (``ack``) only after its destination confirmed delivery. Reads for a sink
come back oldest first and stop at the first row that is waiting for a retry, so a sink
never delivers a device's rows out of order.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Final, Literal, Self

import aiosqlite

from buffers.errors import StorageError
from buffers.records import OutboxRecord, OutboxStatistics, SinkBacklog, StoredRecord

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from pathlib import Path
    from types import TracebackType

log = logging.getLogger(__name__)

SCHEMA_VERSION: Final = 1

_SCHEMA: Final = """
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

_INSERT_RECORD: Final = (
    "INSERT INTO records (id, kind, device_id, stream, seq, t0_s, sample_rate_hz, dtype, shape,"
    " payload, stored_s) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)

Synchronous = Literal["normal", "full"]
# A record to store, a flush request (resolved once committed), or None: close.
_QueueItem = OutboxRecord | asyncio.Future[None] | None


class Outbox:
    """The SQLite outbox as an async context manager; reusable, not reentrant.

    Args:
        path: The database file; its folder is created if missing.
        subscriptions: For each sink, which records it delivers.
        flush_interval_ms: Longest time an accepted record waits for its commit.
        flush_max_rows: A commit happens as soon as this many records wait.
        queue_max_rows: Bound of the in-memory queue; ``put`` waits when it is full.
        synchronous: SQLite's ``synchronous`` pragma: ``normal`` survives a crash of the
            process, ``full`` also a power loss, at the cost of an fsync per commit.
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
    ) -> None:
        self.path = path
        self._subscriptions = dict(subscriptions)
        self._flush_interval_s = flush_interval_ms / 1000.0
        self._flush_max_rows = flush_max_rows
        self._queue_max_rows = queue_max_rows
        self._synchronous = synchronous
        self._busy_timeout_ms = busy_timeout_ms
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
        self._leased: dict[str, set[int]] = {sink: set() for sink in self._subscriptions}

    # --- lifecycle ----------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._lock.locked():
            msg = "Outbox is not reentrant"
            raise RuntimeError(msg)
        await self._lock.acquire()
        stack = AsyncExitStack()
        try:
            self._db = await self._open()
            stack.push_async_callback(self._db.close)
            tg = await stack.enter_async_context(asyncio.TaskGroup())
            self._queue = asyncio.Queue(self._queue_max_rows)
            self._writer = tg.create_task(self._write_loop(), name="wgw.outbox.writer")
            stack.push_async_callback(self._stop_writer)
        except BaseException:
            await stack.aclose()
            self._db = None
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
            self._writer = None
            self._lock.release()

    async def _open(self) -> aiosqlite.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(self.path, isolation_level=None)
        try:
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute(f"PRAGMA synchronous={self._synchronous.upper()}")
            await db.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_ms)}")
            await db.executescript(_SCHEMA)
            await db.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )
            async with db.execute("SELECT COALESCE(MAX(id), 0) FROM records") as cur:
                row = await cur.fetchone()
            self._next_id = (row[0] if row else 0) + 1
        except BaseException:
            await db.close()
            raise
        return db

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

    async def flush(self) -> None:
        """Commit everything accepted so far, now."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self._queue.put(done)
        await done

    async def wait_committed(self, timeout_s: float) -> None:
        """Return after the next commit, or after ``timeout_s``."""
        event = self._committed_event
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await event.wait()

    async def _write_loop(self) -> None:
        while True:
            batch, flushes, closing = await self._gather()
            if batch:
                await self._commit(batch)
            for done in flushes:
                if not done.done():
                    done.set_result(None)
            if closing:
                return

    async def _gather(self) -> tuple[list[OutboxRecord], list[asyncio.Future[None]], bool]:
        """The next group to commit.

        A group ends when the interval ends, the group is full, a flush is asked for, or the
        outbox closes (FIFO, so nothing accepted before either is left out).
        """
        batch: list[OutboxRecord] = []
        item = await self._queue.get()
        deadline = asyncio.get_running_loop().time() + self._flush_interval_s
        while True:
            if item is None:
                return batch, [], True
            if isinstance(item, asyncio.Future):
                return batch, [item], False
            batch.append(item)
            if len(batch) >= self._flush_max_rows:
                return batch, [], False
            try:
                async with asyncio.timeout_at(deadline):
                    item = await self._queue.get()
            except TimeoutError:
                return batch, [], False

    async def _commit(self, batch: Sequence[OutboxRecord]) -> None:
        db = self._require_db()
        now = time.time()
        rows: list[tuple[object, ...]] = []
        pending: list[tuple[str, int]] = []
        for offset, r in enumerate(batch):
            record_id = self._next_id + offset
            shape = json.dumps(list(r.shape)) if r.shape is not None else None
            rows.append(
                (
                    record_id,
                    r.kind,
                    r.device_id,
                    r.stream,
                    r.seq,
                    r.t0_s,
                    r.sample_rate_hz,
                    r.dtype,
                    shape,
                    r.payload,
                    now,
                )
            )
            pending.extend(
                (sink, record_id) for sink, wants in self._subscriptions.items() if wants(r)
            )
        async with self._tx:
            await db.execute("BEGIN IMMEDIATE")
            try:
                await db.executemany(_INSERT_RECORD, rows)
                await db.executemany("INSERT INTO pending (sink, record_id) VALUES (?, ?)", pending)
                await db.execute("COMMIT")
            except BaseException:
                await db.execute("ROLLBACK")
                raise
        self._next_id += len(batch)
        self._committed += len(batch)
        self._commits += 1
        event, self._committed_event = self._committed_event, asyncio.Event()
        event.set()

    # --- delivery -----------------------------------------------------------------------------

    async def lease(self, sink: str, max_rows: int) -> list[StoredRecord]:
        """The sink's oldest undelivered rows, up to the first one waiting for a retry.

        Rows leased and not yet acked or nacked are not offered again in this process; after a
        restart they are.
        """
        db = self._require_db()
        leased = self._leased[sink]
        async with db.execute(
            "SELECT r.id, r.kind, r.device_id, r.stream, r.seq, r.t0_s, r.sample_rate_hz, r.dtype,"
            " r.shape, r.payload, p.next_attempt_s"
            " FROM pending p JOIN records r ON r.id = p.record_id"
            " WHERE p.sink = ? AND p.dead = 0 ORDER BY p.record_id LIMIT ?",
            (sink, max_rows + len(leased)),
        ) as cur:
            rows = await cur.fetchall()
        now = time.time()
        out: list[StoredRecord] = []
        for row in rows:
            if row[0] in leased:
                continue
            if row[10] > now or len(out) == max_rows:
                break
            shape = tuple(json.loads(row[8])) if row[8] is not None else None
            record = OutboxRecord(
                kind=row[1],
                device_id=row[2],
                stream=row[3],
                seq=row[4],
                t0_s=row[5],
                payload=bytes(row[9]),
                sample_rate_hz=row[6],
                dtype=row[7],
                shape=shape,
            )
            out.append(StoredRecord(row[0], record))
        leased.update(r.id for r in out)
        return out

    async def ack(self, sink: str, record_ids: Sequence[int]) -> None:
        """The sink's destination confirmed these rows: they are delivered."""
        await self._update(
            sink, record_ids, "DELETE FROM pending WHERE sink = ? AND record_id = ?", ()
        )

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

    async def _update(
        self, sink: str, record_ids: Sequence[int], sql: str, params: tuple[object, ...]
    ) -> None:
        db = self._require_db()
        async with self._tx:
            await db.execute("BEGIN IMMEDIATE")
            try:
                await db.executemany(sql, [(*params, sink, rid) for rid in record_ids])
                await db.execute("COMMIT")
            except BaseException:
                await db.execute("ROLLBACK")
                raise
        self._leased[sink].difference_update(record_ids)

    # --- status -------------------------------------------------------------------------------

    async def statistics(self) -> OutboxStatistics:
        """Counters since open, and each sink's backlog."""
        db = self._require_db()
        backlog = {sink: SinkBacklog(0, 0) for sink in self._subscriptions}
        async with db.execute(
            "SELECT sink, SUM(dead = 0), SUM(dead = 1) FROM pending GROUP BY sink"
        ) as cur:
            for sink, pending, dead in await cur.fetchall():
                backlog[sink] = SinkBacklog(pending, dead)
        async with db.execute("SELECT COUNT(*) FROM records") as cur:
            row = await cur.fetchone()
        return OutboxStatistics(
            accepted=self._accepted,
            committed=self._committed,
            commits=self._commits,
            backpressure_waits=self._backpressure_waits,
            total_rows=row[0] if row else 0,
            backlog=backlog,
        )

    def _require_db(self) -> aiosqlite.Connection:
        if self._db is None:
            msg = "outbox is not open"
            raise StorageError(msg)
        return self._db
