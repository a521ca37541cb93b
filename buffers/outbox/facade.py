"""``Outbox``: the durable outbox as sinks and sources see it, over parts that each own a job.

``Index`` (the files and the connection), ``Writer`` (group commit, de-duplication, the failing
store's held records), ``Room`` (the cap and a full disk), ``Leases`` (each sink's reads),
``clock`` (corrections after a wall-clock jump), ``StudyStore`` (assignments, sessions, markers).

Size: most of its lines are the public methods' docstrings; each method delegates to a part.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import time
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any, ParamSpec, Self, TypeVar

from buffers.errors import StorageError
from buffers.outbox import statistics
from buffers.outbox.clock import ClockCorrection
from buffers.outbox.config import OutboxConfig, Synchronous
from buffers.outbox.counts import Counts
from buffers.outbox.index import Index, store_fails
from buffers.outbox.leases import Leases
from buffers.outbox.room import Room
from buffers.outbox.study import StudyStore
from buffers.outbox.writer import Writer
from buffers.segments import SEGMENT_MAX_BYTES

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Coroutine, Mapping, Sequence
    from pathlib import Path
    from types import TracebackType

    from buffers.records import OutboxRecord, OutboxStatistics, StoredRecord
    from buffers.recovery import OpenReport

_P = ParamSpec("_P")
_T = TypeVar("_T")


def _storage_errors(
    method: Callable[_P, Coroutine[Any, Any, _T]],
) -> Callable[_P, Coroutine[Any, Any, _T]]:
    """A read or update whose disk fails raises ``StorageError`` (sinks wait on it)."""

    @functools.wraps(method)
    async def guarded(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        try:
            return await method(*args, **kwargs)
        except (OSError, sqlite3.Error) as exc:
            if isinstance(exc, sqlite3.Error) and not store_fails(exc):
                raise
            msg = f"the store cannot be read: {type(exc).__name__}: {exc}"
            raise StorageError(msg) from exc

    return guarded


class Outbox:
    """The outbox as an async context manager; reusable, not reentrant.

    A record is written once; each sink that wants it gets a ``pending`` row for it, which the
    sink deletes (``ack``) only after its destination confirmed delivery. Reads for a sink come
    back oldest first and stop at the first row that is waiting for a retry, so a sink never
    delivers a device's rows out of order.

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
        config = OutboxConfig(
            path,
            flush_interval_ms,
            flush_max_rows,
            queue_max_rows,
            synchronous,
            busy_timeout_ms,
            max_db_mb,
            index_interval_s,
            clock,
        )
        self.path = path
        self._sinks = tuple(subscriptions)
        cap = config.cap_bytes
        segment_bytes = min(SEGMENT_MAX_BYTES, cap // 8) if cap else SEGMENT_MAX_BYTES
        self._index = Index(config, dict(subscriptions), segment_bytes)
        self._counts = Counts()
        self._leases = Leases(self._index, self._sinks)
        self._room = Room(self._index, self._counts, cap)
        self._writer = Writer(config, self._index, self._room, self._leases, self._counts)
        self.study = StudyStore(self._index)
        self._lock = asyncio.Lock()
        self._stack: AsyncExitStack | None = None
        self._last_statistics: OutboxStatistics | None = None

    # --- lifecycle ----------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._lock.locked():
            msg = "Outbox is not reentrant"
            raise RuntimeError(msg)
        await self._lock.acquire()
        stack = AsyncExitStack()
        try:
            stack.push_async_callback(self._index.close)
            await self._index.open()
            tg = await stack.enter_async_context(asyncio.TaskGroup())
            self._writer.start(tg)
            stack.push_async_callback(self._writer.stop)
        except BaseException:
            await stack.aclose()
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
            self._lock.release()

    @property
    def opened(self) -> OpenReport | None:
        """What the integrity check at open found (None before the first open)."""
        return self._index.opened

    @property
    def replayed(self) -> int:
        """Rows rebuilt from the segment log at open (the index had not committed them)."""
        return self._index.replayed

    @property
    def uncommitted(self) -> int:
        """Records accepted and not yet committed (what a crash now would lose)."""
        return self._counts.uncommitted

    @property
    def last_id(self) -> int:
        """The id of the newest committed row (0: none)."""
        return self._index.next_id - 1

    async def limit_pages(self, max_pages: int) -> None:
        """Cap the file at ``max_pages`` pages (``PRAGMA max_page_count``).

        SQLite then answers SQLITE_FULL exactly as on a full card, and the segment log ENOSPC
        once the file's pages and its bytes together pass the same size: this is how tests
        make the disk full, and how a deployment that shares a small disk keeps a ceiling.
        """
        await self._room.limit_pages(max_pages)

    async def wait_usable(self) -> None:
        """Return once the store works (again)."""
        await self._index.usable.wait()

    # --- writing ------------------------------------------------------------------------------

    async def put(self, record: OutboxRecord) -> None:
        """Accept a record; it is committed within the flush interval.

        Waits while the queue is full (back-pressure, counted).

        Raises:
            StorageError: The outbox is closed or its writer has failed.
        """
        await self._writer.put(record)

    async def flush(self, *, index: bool = True) -> None:
        """Commit everything accepted so far, now.

        ``index``: also commit the SQLite index, so that other connections (``wgw queue``,
        ``wgw export``) see the rows; without it, the rows are in the segment log (durable)
        and visible to this outbox's own reads.

        Raises:
            StorageError: The outbox is closed or its writer has failed (nothing would ever
                answer the flush), or the store is failing (the records are held meanwhile).
        """
        await self._writer.flush(index=index)

    async def wait_committed(self, timeout_s: float) -> None:
        """Return after the next commit, or after ``timeout_s``."""
        await self._writer.wait_committed(timeout_s)

    @_storage_errors
    async def cursor(self, device_id: str, stream: str) -> int | None:
        """The newest source cursor held for a device's stream (where its records stand)."""
        rows = await self._index.read(
            "SELECT cursor FROM source_cursors WHERE device_id = ? AND stream = ?",
            (device_id, stream),
        )
        return int(rows[0]["cursor"]) if rows else None

    async def stream_ends(self, device_id: str) -> dict[str, float]:
        """Where each of a device's streams' stored data ends (UTC), as of the last commit."""
        rows = await self._index.read(
            "SELECT stream, end_s FROM stream_ends WHERE device_id = ?", (device_id,)
        )
        return {row["stream"]: float(row["end_s"]) for row in rows}

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
        await self._writer.correct_clock(
            ClockCorrection(boot_id, offset_s, at_mono_s, offset_before_s, synced, done)
        )
        return await done

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
        return await self._leases.lease(
            sink, max_rows, max_bytes, after_id=after_id, device_id=device_id
        )

    @_storage_errors
    async def peek(self, sink: str, max_rows: int, *, after_id: int = 0) -> list[StoredRecord]:
        """What :meth:`lease` would hand out from ``after_id`` now, without taking it."""
        return await self._leases.lease(sink, max_rows, after_id=after_id, take=False)

    @_storage_errors
    async def history(
        self, wants: Callable[[OutboxRecord], bool], after_id: int, max_rows: int
    ) -> list[StoredRecord]:
        """Retained rows after ``after_id`` that ``wants`` accepts, delivered or not.

        For a ``full`` resend: it reads, and changes no sink's backlog or cursor.
        """
        return await self._leases.history(wants, after_id, max_rows)

    @_storage_errors
    async def count_retained(self, kind: str, streams: Collection[str]) -> int:
        """How many rows of ``kind`` and ``streams`` the file holds, delivered or not."""
        marks = ", ".join("?" * len(streams))
        (row,) = await self._index.read(
            f"SELECT COUNT(*) FROM records WHERE kind = ? AND stream IN ({marks})",  # noqa: S608
            (kind, *streams),
        )
        return int(row[0])

    async def ack(self, sink: str, record_ids: Sequence[int]) -> None:
        """The sink's destination confirmed these rows: they are delivered.

        The deletion rides on the next group commit (one transaction a flush interval, not one
        per ack: SD cards wear by the page). Until then the rows stay out of this process's
        leases; a crash before that commit re-offers them, which at-least-once allows.
        """
        if record_ids:
            await self._writer.ack(sink, tuple(record_ids))

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
        self._leases.given_back(sink, record_ids)

    def forget_leases(self, sink: str) -> None:
        """The sink starts over (after a storage error): its rows in flight are offered again."""
        self._leases.forget(sink)

    @_storage_errors
    async def _update(
        self, sink: str, record_ids: Sequence[int], sql: str, params: tuple[object, ...]
    ) -> None:
        async with self._index.transaction() as db:
            await db.executemany(sql, [(*params, sink, rid) for rid in record_ids])
        self._leases.given_back(sink, record_ids)

    @_storage_errors
    async def first_pending_since(self, sink: str, t0_s: float) -> int | None:
        """The id of the sink's oldest pending row whose time is ``t0_s`` or later, if any.

        Scans the sink's backlog once (a sink asks when it splits into lanes, after an outage).
        """
        (row,) = await self._index.read(
            "SELECT MIN(p.record_id) FROM pending p JOIN records r ON r.id = p.record_id"
            " WHERE p.sink = ? AND p.dead = 0 AND r.t0_s >= ?",
            (sink, t0_s),
        )
        return int(row[0]) if row[0] is not None else None

    @_storage_errors
    async def has_pending_before(self, sink: str, t0_s: float) -> bool:
        """Whether the sink still has a pending row (dead letters aside) older than ``t0_s``."""
        rows = await self._index.read(
            "SELECT 1 FROM pending p JOIN records r ON r.id = p.record_id"
            " WHERE p.sink = ? AND p.dead = 0 AND r.t0_s < ? LIMIT 1",
            (sink, t0_s),
        )
        return bool(rows)

    # --- status -------------------------------------------------------------------------------

    async def statistics(self) -> OutboxStatistics:
        """Counters since open, each sink's backlog, evictions since the file was created.

        While the store fails: the counters, and the rest as last read.
        """
        try:
            stats = await self._read_statistics()
        except StorageError:
            failing = self._index.failing
            if failing is None:
                raise
            return statistics.degraded(
                self._last_statistics, self._counts, self._sinks, failing, self._writer.held
            )
        self._last_statistics = stats
        return stats

    @_storage_errors
    async def _read_statistics(self) -> OutboxStatistics:
        return await statistics.read(
            self._index, self._counts, self._sinks, full=self._room.full, held=self._writer.held
        )
