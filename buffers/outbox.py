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
import json
import logging
import shutil
import sqlite3
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal, Self

import aiosqlite

from buffers import retention
from buffers.errors import StorageError
from buffers.records import OutboxRecord, OutboxStatistics, SinkBacklog, StoredRecord
from buffers.recovery import OpenReport, prepare

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
    from pathlib import Path
    from types import TracebackType

log = logging.getLogger(__name__)

_INSERT_RECORD: Final = (
    "INSERT INTO records (id, kind, device_id, stream, seq, t0_s, sample_rate_hz, dtype, shape,"
    " payload, stored_s, encoding, size, sinks, boot_id, clock_offset_s, clock_synced,"
    " participant_id, session_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_SELECT_RECORD: Final = (
    "r.id, r.kind, r.device_id, r.stream, r.seq, r.t0_s, r.sample_rate_hz, r.dtype, r.shape,"
    " r.payload, r.encoding, r.participant_id, r.session_id"
)
_LOW_WATER: Final = 0.9  # evict down to this fraction of the cap
_RECOVER_BYTES: Final = 1 << 20  # room needed before raw waveforms are accepted again
_FULL_RETRY_S: Final = 1.0
_SQLITE_FULL: Final = 13

Synchronous = Literal["normal", "full"]


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


# A record to store, acks to apply, a clock correction, a flush request (resolved once
# committed), or None: close.
_QueueItem = OutboxRecord | _Ack | ClockCorrection | asyncio.Future[None] | None


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
        max_db_mb: Size cap of the data in the file; ``None``: no cap but the disk.
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
    ) -> None:
        self.path = path
        self._subscriptions = dict(subscriptions)
        self._flush_interval_s = flush_interval_ms / 1000.0
        self._flush_max_rows = flush_max_rows
        self._queue_max_rows = queue_max_rows
        self._synchronous = synchronous
        self._busy_timeout_ms = busy_timeout_ms
        self._cap_bytes = int(max_db_mb * 1024 * 1024) if max_db_mb else None
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
        self._full = False
        self.opened: OpenReport | None = None
        self._leased: dict[str, set[int]] = {sink: set() for sink in self._subscriptions}
        self._acks: list[_Ack] = []
        self._corrections: list[ClockCorrection] = []
        self._resume_after: dict[tuple[str, int], int] = {}  # (sink, after_id) -> last handed out

    # --- lifecycle ----------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._lock.locked():
            msg = "Outbox is not reentrant"
            raise RuntimeError(msg)
        await self._lock.acquire()
        stack = AsyncExitStack()
        try:
            self.opened = await asyncio.to_thread(prepare, self.path)
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
        db = await aiosqlite.connect(self.path, isolation_level=None)
        try:
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute(f"PRAGMA synchronous={self._synchronous.upper()}")
            await db.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_ms)}")
            async with db.execute("SELECT COALESCE(MAX(id), 0) FROM records") as cur:
                row = await cur.fetchone()
            self._next_id = (row[0] if row else 0) + 1
        except BaseException:
            await db.close()
            raise
        return db

    @property
    def last_id(self) -> int:
        """The id of the newest committed row (0: none)."""
        return self._next_id - 1

    async def limit_pages(self, max_pages: int) -> None:
        """Cap the file at ``max_pages`` pages (``PRAGMA max_page_count``).

        SQLite then answers SQLITE_FULL exactly as on a full card: this is how tests make the
        disk full, and how a deployment that shares a small disk keeps a hard ceiling.
        """
        db = self._require_db()
        async with self._tx:
            await db.execute(f"PRAGMA max_page_count={int(max_pages)}")

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
        """Commit everything accepted so far, now.

        Raises:
            StorageError: The outbox is closed or its writer has failed (nothing would ever
                answer the flush).
        """
        writer = self._writer
        if writer is None or writer.done():
            msg = "outbox is not writing (closed, or its writer failed)"
            raise StorageError(msg)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self._queue.put(done)
        await asyncio.wait([done, writer], return_when=asyncio.FIRST_COMPLETED)
        if not done.done():
            msg = "the outbox writer stopped before committing"
            raise StorageError(msg)

    async def wait_committed(self, timeout_s: float) -> None:
        """Return after the next commit, or after ``timeout_s``."""
        event = self._committed_event
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await event.wait()

    async def _write_loop(self) -> None:
        while True:
            batch, flushes, closing = await self._gather()
            if batch or self._acks:
                await self._commit_with_room(batch)
            while self._corrections:
                await self._correct_clock(self._corrections.pop(0))
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
            try:
                if batch or self._acks:
                    await self._commit(batch)
                break
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode != _SQLITE_FULL:
                    raise
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
            usage = await retention.usage(self._require_db())
            if usage.used_bytes > self._cap_bytes:
                await self._evict(int(self._cap_bytes * _LOW_WATER), len(retention.TIERS))

    async def _make_room(self, step: str, batch: list[OutboxRecord]) -> list[OutboxRecord]:
        if step == "refuse_waveforms":
            return self._refuse_waveforms(batch)
        need = max(2 * sum(len(r.payload) for r in batch), 64 * 1024)
        target = (await retention.usage(self._require_db())).used_bytes - need
        tiers = retention.WAVEFORM_TIERS if step == "evict" else len(retention.TIERS)
        await self._evict(target, tiers)
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
        return usage.room_bytes >= _RECOVER_BYTES and disk_free >= _RECOVER_BYTES

    async def _evict(self, target_used_bytes: int, tiers: int) -> None:
        async with self._tx:
            try:
                evicted = await retention.evict(
                    self._require_db(), target_used_bytes=target_used_bytes, tiers=tiers
                )
            except sqlite3.OperationalError as exc:
                log.error("eviction failed: %s", exc)
                return
        for key, count in evicted.items():
            log.warning("retention: evicted %d %s rows", count, key)

    async def _commit(self, batch: Sequence[OutboxRecord]) -> None:
        db = self._require_db()
        now = time.time()
        rows: list[tuple[object, ...]] = []
        pending: list[tuple[str, int]] = []
        for offset, r in enumerate(batch):
            record_id = self._next_id + offset
            shape = json.dumps(list(r.shape)) if r.shape is not None else None
            sinks = [sink for sink, wants in self._subscriptions.items() if wants(r)]
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
                    r.encoding,
                    len(r.payload),
                    len(sinks),
                    r.clock.boot_id if r.clock else None,
                    r.clock.offset_s if r.clock else None,
                    r.clock.synced if r.clock else None,
                    r.participant_id,
                    r.session_id,
                )
            )
            pending.extend((sink, record_id) for sink in sinks)
        acks, self._acks = self._acks, []
        async with self._tx:
            await db.execute("BEGIN IMMEDIATE")
            try:
                await db.executemany(_INSERT_RECORD, rows)
                await db.executemany("INSERT INTO pending (sink, record_id) VALUES (?, ?)", pending)
                await db.executemany(
                    "DELETE FROM pending WHERE sink = ? AND record_id = ?",
                    [(a.sink, rid) for a in acks for rid in a.record_ids],
                )
                await db.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.OperationalError):
                    await db.execute("ROLLBACK")
                self._acks[:0] = acks  # applied with the next attempt
                raise
        for a in acks:
            self._leased[a.sink].difference_update(a.record_ids)
        self._next_id += len(batch)
        self._committed += len(batch)
        self._commits += 1
        event, self._committed_event = self._committed_event, asyncio.Event()
        event.set()

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
        db = self._require_db()
        try:
            async with self._tx:
                await db.execute("BEGIN IMMEDIATE")
                try:
                    cur = await db.execute(
                        "UPDATE records SET t0_s = t0_s + (? - clock_offset_s),"
                        " clock_corrected_s = clock_corrected_s + (? - clock_offset_s),"
                        " clock_offset_s = ?"
                        " WHERE boot_id = ? AND clock_synced IS NOT 1"
                        " AND abs(clock_offset_s - ?) > 0.001",
                        (c.offset_s, c.offset_s, c.offset_s, c.boot_id, c.offset_s),
                    )
                    moved = cur.rowcount
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
                    await db.execute("COMMIT")
                except BaseException:
                    with contextlib.suppress(sqlite3.OperationalError):
                        await db.execute("ROLLBACK")
                    raise
        except sqlite3.OperationalError as exc:  # a full disk: the rows stay, the caller hears
            if not c.done.done():
                c.done.set_exception(StorageError(f"clock correction failed: {exc}"))
            return
        if not c.done.done():
            c.done.set_result(moved)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction beside the writer's, for rare writes (the study context)."""
        db = self._require_db()
        async with self._tx:
            await db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                await db.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.OperationalError):
                    await db.execute("ROLLBACK")
                raise

    async def query(self, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]:
        """Rows of one read (WAL: it does not wait for the writer)."""
        async with self._require_db().execute(sql, params) as cur:
            return list(await cur.fetchall())

    # --- delivery -----------------------------------------------------------------------------

    async def lease(
        self, sink: str, max_rows: int, max_bytes: int | None = None, *, after_id: int = 0
    ) -> list[StoredRecord]:
        """The sink's oldest undelivered rows, up to the first one waiting for a retry.

        At most ``max_rows`` rows and (beyond the first row) ``max_bytes`` payload bytes; only
        rows after ``after_id`` (a sink with two lanes leases each from its own start). Rows
        leased and not yet acked or nacked are not offered again in this process; after a
        restart they are.
        """
        db = self._require_db()
        leased = self._leased[sink]
        # A snapshot taken before the query: an ack committed while the query runs removes its
        # rows from ``leased``, but the query may still have read them as pending.
        excluded = set(leased)
        # Every pending row up to the last one handed out is still in flight, unless one was
        # given back since (release, nack): then scan from the oldest again.
        after = max(after_id, self._resume_after.get((sink, after_id), 0))
        async with db.execute(
            f"SELECT {_SELECT_RECORD}, p.next_attempt_s FROM pending p"  # noqa: S608 - constants
            " JOIN records r ON r.id = p.record_id"
            " WHERE p.sink = ? AND p.dead = 0 AND p.record_id > ? ORDER BY p.record_id LIMIT ?",
            (sink, after, max_rows + (len(excluded) if after == after_id else 0)),
        ) as cur:
            rows = await cur.fetchall()
        now = time.time()
        out: list[StoredRecord] = []
        size = 0
        for row in rows:
            if row[0] in excluded:
                continue
            size += len(row[9])
            if row[13] > now or len(out) == max_rows or (out and max_bytes and size > max_bytes):
                break
            out.append(StoredRecord(row[0], _record(row)))
        leased.update(r.id for r in out)
        if out:
            self._resume_after[(sink, after_id)] = out[-1].id
        return out

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
        records = (StoredRecord(row[0], _record(row)) for row in rows)
        return [r for r in records if wants(r.record)]

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
        self._forget_resume(sink)

    def _forget_resume(self, sink: str) -> None:
        """Rows of ``sink`` were given back: every lane scans from its start again."""
        for key in [k for k in self._resume_after if k[0] == sink]:
            del self._resume_after[key]

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
        """Counters since open, each sink's backlog, evictions since the file was created."""
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
        usage = await retention.usage(db)
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
            used_bytes=usage.used_bytes,
            corrupt_recoveries=counters.get("corrupt_recoveries", 0),
        )

    def _require_db(self) -> aiosqlite.Connection:
        if self._db is None:
            msg = "outbox is not open"
            raise StorageError(msg)
        return self._db


def _record(row: Sequence[Any]) -> OutboxRecord:
    shape = tuple(json.loads(row[8])) if row[8] is not None else None
    return OutboxRecord(
        kind=row[1],
        device_id=row[2],
        stream=row[3],
        seq=row[4],
        t0_s=row[5],
        payload=bytes(row[9]),
        sample_rate_hz=row[6],
        dtype=row[7],
        shape=shape,
        encoding=row[10],
        participant_id=row[11],
        session_id=row[12],
    )
