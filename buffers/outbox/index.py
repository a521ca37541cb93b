"""The store's files: the SQLite index and the segment log it points into, opened together.

It owns the connection, the cache of contexts (what neighbouring rows share), the next id, the
index transaction that rides a minute of group commits, and the failing-store state. Everything
else in the outbox reaches SQLite through it.

Size: one class near 300 lines: the connection's life (open, fail, reopen, the index
transaction) and the replay share one state; the rows' own code is in ``rows``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import sqlite3
from typing import TYPE_CHECKING, Any, Final

import aiosqlite

from buffers.errors import StorageError
from buffers.outbox.rows import Contexts, insert
from buffers.recovery import OpenReport, prepare
from buffers.segments import Mark, SegmentLog, folder_for

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Mapping, Sequence
    from pathlib import Path

    from buffers.outbox.config import OutboxConfig
    from buffers.records import OutboxRecord, SetAside
    from buffers.segments import Placed

log = logging.getLogger(__name__)

_SAVEPOINT: Final = "wgw_batch"
_CLOSE_TIMEOUT_S: Final = 5.0
_WAL_LIMIT_BYTES: Final = 4 * 1024 * 1024  # journal_size_limit (see open)
FAILING_RETRY_S: Final = 2.0  # a failing store is reopened this often
# SQLite's primary result codes that mean the storage itself fails (not a full disk)
_SQLITE_STORE_FAILURES: Final = frozenset({8, 10, 11, 14, 26})  # READONLY IOERR CORRUPT ...


def store_fails(exc: BaseException) -> bool:
    """Whether ``exc`` says the storage itself fails (I/O error, read-only), not that it is full."""
    if isinstance(exc, sqlite3.Error):
        return (getattr(exc, "sqlite_errorcode", 0) & 0xFF) in _SQLITE_STORE_FAILURES
    return isinstance(exc, OSError) and exc.errno != errno.ENOSPC


class Index:
    """The index and the segment log of one outbox file; opened, closed and reopened as one."""

    def __init__(
        self,
        config: OutboxConfig,
        subscriptions: Mapping[str, Callable[[OutboxRecord], bool]],
        segment_max_bytes: int,
    ) -> None:
        self.path: Path = config.path
        self._config = config
        self._subscriptions = subscriptions
        self._segment_max_bytes = segment_max_bytes
        self._db: aiosqlite.Connection | None = None
        self._segments: SegmentLog | None = None
        self.tx = asyncio.Lock()  # one writing transaction at a time: the writer's or another
        self.opened: OpenReport | None = None
        self.set_aside: list[SetAside] = []  # unreadable files and batches found at open
        self.replayed = 0
        self.next_id = 1
        self.contexts = Contexts()
        self.index_open = False
        self._index_opened_at = 0.0
        self.reindex = False  # the index transaction was lost: the log is replayed into it
        self.failing: str | None = None  # why the disk refuses, while it does
        self.usable = asyncio.Event()
        self.usable.set()
        self._reopen_at = 0.0
        self._reopening = False

    # --- opening and closing ----------------------------------------------------------------

    async def open(self) -> None:
        """The index and the segment log, checked, replayed, ready for the writer."""
        self.opened = await asyncio.to_thread(prepare, self.path)
        segments = SegmentLog(folder_for(self.path), max_bytes=self._segment_max_bytes)
        self._segments = segments
        self.set_aside = await asyncio.to_thread(segments.check)
        db = await aiosqlite.connect(self.path, isolation_level=None)
        try:
            await db.execute("PRAGMA journal_mode=WAL")
            # The WAL file keeps the size of the largest transaction it ever held (an eviction
            # of a fifth of the cap made it 15 MB beside a 40 MB cap, for good) unless a limit
            # truncates it after a checkpoint; 4 MiB is what the default checkpoint lets it reach.
            await db.execute(f"PRAGMA journal_size_limit={_WAL_LIMIT_BYTES}")
            await db.execute(f"PRAGMA synchronous={self._config.synchronous.upper()}")
            await db.execute(f"PRAGMA busy_timeout={int(self._config.busy_timeout_ms)}")
            db.row_factory = sqlite3.Row
            self._db = db
            await self.load_contexts()
            self.replayed = await self.replay()
            self.set_aside += segments.set_aside
            await self._count_set_aside()
        except BaseException:
            self._db = None
            await db.close()
            raise

    async def close(self) -> None:
        """Close what :meth:`open` opened (on a failing disk, as far as it goes)."""
        db, self._db = self._db, None
        segments, self._segments = self._segments, None
        self.index_open = False
        try:
            if db is not None:
                async with asyncio.timeout(_CLOSE_TIMEOUT_S):
                    await db.close()
        finally:
            if segments is not None:
                segments.close()

    @property
    def db(self) -> aiosqlite.Connection:
        """The connection.

        Raises:
            StorageError: The store is closed, or failing.
        """
        if self.failing is not None and not self._reopening:
            msg = f"the store is failing: {self.failing}"
            raise StorageError(msg)
        if self._db is None:
            msg = "outbox is not open"
            raise StorageError(msg)
        return self._db

    @property
    def segments(self) -> SegmentLog:
        """The segment log.

        Raises:
            StorageError: The store is closed.
        """
        if self._segments is None:
            msg = "outbox is not open"
            raise StorageError(msg)
        return self._segments

    @property
    def segments_if_open(self) -> SegmentLog | None:
        """The segment log, or None while closed."""
        return self._segments

    # --- a failing store --------------------------------------------------------------------

    def fail(self, exc: BaseException) -> bool:
        """The disk refuses: reads raise until :meth:`reopened`; True the first time."""
        first = self.failing is None
        self.failing = f"{type(exc).__name__}: {exc}"
        self.usable.clear()
        self._reopen_at = self._config.clock() + FAILING_RETRY_S
        return first

    async def reopened(self) -> bool:
        """Try the store again (a remounted card, a disk writable again), every few seconds."""
        clock = self._config.clock
        if clock() < self._reopen_at:
            return False
        self._reopen_at = clock() + FAILING_RETRY_S
        with contextlib.suppress(Exception):  # the old files are on a disk that failed
            await self.close()
        self._reopening = True
        try:
            await self.open()
        except (OSError, sqlite3.Error) as exc:
            if not store_fails(exc):
                raise
            with contextlib.suppress(Exception):
                await self.close()
            self.failing = f"{type(exc).__name__}: {exc}"
            return False
        finally:
            self._reopening = False
        self.reindex = False
        self.failing = None
        self.usable.set()
        return True

    # --- the index transaction --------------------------------------------------------------

    async def open_index(self) -> None:
        """Begin the index transaction unless it is open (the caller holds ``tx``)."""
        if not self.index_open:
            await self.db.execute("BEGIN IMMEDIATE")
            self.index_open = True
            self._index_opened_at = self._config.clock()

    def index_due(self) -> bool:
        """Whether the open index transaction has run its interval."""
        return self.index_open and self.index_wait_s() == 0.0

    def index_wait_s(self) -> float:
        """Seconds until the open index transaction is due."""
        elapsed = self._config.clock() - self._index_opened_at
        return max(0.0, self._config.index_interval_s - elapsed)

    async def commit_index(self) -> None:
        """Commit the index transaction, after the log it points into is on disk.

        The caller holds ``tx``.
        """
        if not self.index_open:
            return
        db = self.db
        await asyncio.to_thread(self.segments.sync)  # an fsync must not stall the loop
        await db.execute(
            "INSERT INTO meta (key, value) VALUES ('indexed_through', ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (str(self.next_id - 1),),
        )
        await db.execute("COMMIT")
        self.index_open = False
        if self._config.synchronous != "full":
            # SQLite's NORMAL commit is not durable until the WAL is: once a minute it is made
            # so, and a cut then loses at most one index interval of rows and of acks.
            await asyncio.to_thread(self._sync_index_files)
        await self.purge(index_synced=True)  # files the committed index no longer holds

    async def lost_index(self) -> None:
        """SQLite rolled the index transaction back: the log still holds it, replayed next."""
        self.index_open, self.reindex = False, True
        await self.load_contexts()

    async def purge(self, *, index_synced: bool = False) -> None:
        """Remove the retired segment files, once the index that forgot them is on disk.

        With ``synchronous=normal`` SQLite's commit is not yet durable: a power cut would bring
        back an index whose rows live in the removed files. So the WAL (and the file, which a
        checkpoint may have written) are fsynced first.
        """
        segments = self.segments
        if not segments.retired:
            return
        if self._config.synchronous != "full" and not index_synced:
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

    @contextlib.asynccontextmanager
    async def batch(self) -> AsyncIterator[aiosqlite.Connection]:
        """One group commit inside the index transaction: all of it or none (a savepoint).

        The caller holds ``tx``; on failure the caller undoes its log append.
        """
        if self.reindex:
            self.replayed += await self.replay()
            self.reindex = False
        await self.open_index()
        db = self.db
        await db.execute(f"SAVEPOINT {_SAVEPOINT}")
        try:
            yield db
            await db.execute(f"RELEASE {_SAVEPOINT}")
        except BaseException:
            if db.in_transaction:
                with contextlib.suppress(sqlite3.OperationalError):
                    await db.execute(f"ROLLBACK TO {_SAVEPOINT}")
                    await db.execute(f"RELEASE {_SAVEPOINT}")
            else:
                # SQLite rolled the whole index transaction back (it may, on a full disk):
                # what it held is still in the log; the next commit replays it.
                await self.lost_index()
            raise

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction beside the writer's (rare writes: study context, nacks)."""
        async with self.tx:
            await self.commit_index()
            async with self.own_transaction() as db:
                yield db

    @contextlib.asynccontextmanager
    async def own_transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """BEGIN IMMEDIATE ... COMMIT; on failure a rollback, and the contexts read again.

        The caller holds ``tx`` and no index transaction is open.
        """
        db = self.db
        await db.execute("BEGIN IMMEDIATE")
        try:
            yield db
            await db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.OperationalError):
                await db.execute("ROLLBACK")
            await self.load_contexts()
            raise

    async def read(self, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]:
        """Rows of one read, by name (WAL: it does not wait for the writer)."""
        async with self.db.execute(sql, params) as cur:
            return list(await cur.fetchall())

    async def read_tuples(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """Rows of one read as plain tuples (a hot path: positions named by the caller)."""
        async with self.db.execute(sql, params) as cur:
            cur.row_factory = None
            return [tuple(row) for row in await cur.fetchall()]

    # --- rows -------------------------------------------------------------------------------

    async def load_contexts(self) -> None:
        """Read the contexts again (after a rollback dropped some the cache holds)."""
        await self.contexts.load(self.db)

    async def _count_set_aside(self) -> None:
        """Count what the open found unreadable (persisted), and say it in one log line."""
        if not self.set_aside:
            return
        total = sum(s.bytes for s in self.set_aside)
        await self.db.executemany(
            "INSERT INTO counters (name, value) VALUES (?, ?)"
            " ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
            [("set_aside.files", len(self.set_aside)), ("set_aside.bytes", total)],
        )
        log.error(
            "outbox: %d unreadable part(s) of the segment log set aside (%d bytes): %s",
            len(self.set_aside),
            total,
            "; ".join(f"{s.name}: {s.reason}" for s in self.set_aside),
        )

    async def replay(self) -> int:
        """Put what the segment log holds beyond the index into it (after a crash); how many.

        Beyond means past the newest id the index has held (``meta.indexed_through``, kept at
        each index commit), not only past its newest row: rows evicted since must stay gone.
        """
        (row,) = await self.read(
            "SELECT MAX(COALESCE((SELECT MAX(id) FROM items), 0),"
            " COALESCE((SELECT CAST(value AS INTEGER) FROM meta"
            " WHERE key = 'indexed_through'), 0)) AS indexed"
        )
        indexed = row["indexed"]
        replayed = await asyncio.to_thread(lambda: list(self.segments.replay(indexed)))
        # the same id twice: a batch appended again after the index refused it the first time
        by_id = {r.id: r for r in replayed}
        self.next_id = max([indexed, *by_id]) + 1
        if not by_id:
            return 0
        async with self.own_transaction() as db:
            rows = [(r.id, r.record, r.stored_s, r.placed) for r in by_id.values()]
            await self.insert(db, rows)
        log.warning("outbox: %d rows since the last index commit rebuilt from the log", len(by_id))
        return len(by_id)

    async def insert(
        self, db: aiosqlite.Connection, rows: Sequence[tuple[int, OutboxRecord, float, Placed]]
    ) -> None:
        """Index rows (id, record, stored at, where its payload lies) for the sinks wanting them."""
        await insert(db, self.contexts, self._subscriptions, rows)

    def undo(self, mark: Mark | None) -> None:
        """Cut a failed batch back out of the segment log."""
        if mark is not None:
            self.segments.undo(mark)
