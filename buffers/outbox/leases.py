"""Reading for delivery: each sink's leases, where its next lease resumes, records built once.

A sink leases its oldest undelivered rows; rows leased and not yet acked, nacked or released
are not offered again in this process (after a restart they are).
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any, Final

from buffers.records import OutboxRecord, StoredRecord

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from buffers.outbox.index import Index

_BUILT_MAX: Final = 20_000  # records kept built for leases that come back to them
_RESUME_MAX: Final = 32  # resume points kept (a lane's after_id is new after each outage)
# The columns a record is built from, read as plain tuples: a lease reads thousands of rows a
# second, and sqlite3.Row's lookup by name scans the column names each time. Each position
# has a name below.
_COLUMNS: Final = (
    "id", "kind", "device_id", "stream", "seq", "t0_s", "sample_rate_hz", "dtype", "shape",
    "payload", "encoding", "participant_id", "session_id", "seg", "seg_offset", "size",
    "backfilled", "next_attempt_s",
)  # fmt: skip
(
    _ID, _KIND, _DEVICE_ID, _STREAM, _SEQ, _T0_S, _RATE, _DTYPE, _SHAPE, _PAYLOAD, _ENCODING,
    _PARTICIPANT, _SESSION, _SEG, _SEG_OFFSET, _SIZE, _BACKFILLED, _NEXT_ATTEMPT_S,
) = range(len(_COLUMNS))  # fmt: skip
_SELECT_RECORD: Final = ", ".join(f"r.{c}" for c in _COLUMNS[:_NEXT_ATTEMPT_S])
Row = tuple[Any, ...]


class Leases:
    """What each sink holds, and the records built for it."""

    def __init__(self, index: Index, sinks: Iterable[str]) -> None:
        self._index = index
        self._leased: dict[str, set[int]] = {sink: set() for sink in sinks}
        self._resume_after: dict[tuple[str, int], int] = {}  # (sink, after_id) -> last handed out
        self._built: dict[int, OutboxRecord] = {}

    async def lease(
        self,
        sink: str,
        max_rows: int,
        max_bytes: int | None = None,
        *,
        after_id: int = 0,
        device_id: str | None = None,
        take: bool = True,
    ) -> list[StoredRecord]:
        """The sink's oldest undelivered rows, up to the first one waiting for a retry.

        ``take`` false: a peek from ``after_id``; nothing is marked in flight.
        """
        leased = self._leased[sink]
        # A snapshot taken before the query: an ack committed while the query runs removes its
        # rows from ``leased``, but the query may still have read them as pending.
        excluded = set(leased)
        # Every pending row up to the last one handed out is still in flight, unless one was
        # given back since (release, nack): then scan from the oldest again. (Not so for one
        # device's rows: the other devices' rows before them are not in flight.)
        after = after_id
        if device_id is None and take:
            after = max(after_id, self._resume_after.get((sink, after_id), 0))
        device = " AND r.device_id = ?" if device_id is not None else ""
        rows = await self._index.read_tuples(
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
        )
        now = time.time()
        taken: list[Row] = []
        size = 0
        for row in rows:
            if row[_ID] in excluded:
                continue
            size += row[_SIZE]
            full = len(taken) == max_rows or (taken and max_bytes and size > max_bytes)
            if row[_NEXT_ATTEMPT_S] > now or full:
                break
            taken.append(row)
        out = self.records(taken)
        if take:
            leased.update(r.id for r in out)
            if out and device_id is None:
                # kept in order of use; the least recent goes (a lane that has ended): without
                # its resume point a lease only scans from ``after_id`` again
                self._resume_after.pop((sink, after_id), None)
                self._resume_after[(sink, after_id)] = out[-1].id
                if len(self._resume_after) > _RESUME_MAX:
                    del self._resume_after[next(iter(self._resume_after))]
        return out

    async def history(
        self, wants: Callable[[OutboxRecord], bool], after_id: int, max_rows: int
    ) -> list[StoredRecord]:
        """Retained rows after ``after_id`` that ``wants`` accepts, delivered or not."""
        rows = await self._index.read_tuples(
            f"SELECT {_SELECT_RECORD} FROM records r WHERE r.id > ? ORDER BY r.id LIMIT ?",  # noqa: S608
            (after_id, max_rows),
        )
        return [r for r in self.records(rows) if wants(r.record)]

    def settled(self, sink: str, record_ids: Iterable[int]) -> None:
        """These rows were acked: no longer in flight."""
        self._leased[sink].difference_update(record_ids)

    def given_back(self, sink: str, record_ids: Sequence[int]) -> None:
        """These rows come back (released, nacked, parked): the next lease scans from the start."""
        self._leased[sink].difference_update(record_ids)
        if record_ids:
            self._forget_resume(sink)

    def forget(self, sink: str) -> None:
        """The sink starts over: its rows in flight are offered again."""
        self._leased[sink].clear()
        self._forget_resume(sink)

    def clear(self) -> None:
        """The store was reopened: nothing is in flight, nothing built."""
        self._built.clear()
        for leased in self._leased.values():
            leased.clear()
        self._resume_after.clear()

    def times_moved(self) -> None:
        """A clock correction moves rows' times: records built before are stale."""
        self._built.clear()

    def _forget_resume(self, sink: str) -> None:
        for key in [k for k in self._resume_after if k[0] == sink]:
            del self._resume_after[key]

    def records(self, rows: Sequence[Row]) -> list[StoredRecord]:
        """Records from ``_SELECT_RECORD`` rows, their payloads read from the log together.

        A sink leases the same rows again while it waits (pacing, retries): the records built
        or used last are kept (rows do not change but for clock corrections, which empty the
        cache), the least recently used go first.
        """
        cache = self._built
        missing = [row for row in rows if row[_ID] not in cache]
        in_log = [row for row in missing if row[_SEG] is not None]
        places = [(row[_SEG], row[_SEG_OFFSET], row[_SIZE]) for row in in_log]
        read = self._index.segments.read_many(places)
        payloads = dict(zip((row[_ID] for row in in_log), read, strict=True))
        for row in missing:
            cache[row[_ID]] = _record(row, payloads.get(row[_ID]) or bytes(row[_PAYLOAD] or b""))
        out = []
        for row in rows:
            record = cache.pop(row[_ID])  # and back in last: the most recently used
            cache[row[_ID]] = record
            out.append(StoredRecord(row[_ID], record))
        # trimmed only now: before the lookup, a full cache could drop rows of this very
        # lease that were built by an earlier one
        while len(cache) > _BUILT_MAX:
            del cache[next(iter(cache))]
        return out


def _record(row: Row, payload: bytes) -> OutboxRecord:
    shape = row[_SHAPE]
    return OutboxRecord(
        kind=row[_KIND],
        device_id=row[_DEVICE_ID],
        stream=row[_STREAM],
        seq=row[_SEQ],
        t0_s=row[_T0_S],
        payload=payload,
        sample_rate_hz=row[_RATE],
        dtype=row[_DTYPE],
        shape=tuple(json.loads(shape)) if shape is not None else None,
        encoding=row[_ENCODING],
        participant_id=row[_PARTICIPANT],
        session_id=row[_SESSION],
        backfilled=bool(row[_BACKFILLED]),
    )
