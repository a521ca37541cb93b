"""The outbox's segment log: every group commit appended once to a file, payloads kept there.

Why: SQLite in WAL mode writes every changed page twice (the WAL, then the checkpoint), and a
commit a second rewrites whole 4 KB pages; an append-only file writes each byte once. So the
payloads live here and nowhere else, and each batch also carries its records' fields, so that
the SQLite index, committed only every ``index_interval_s``, can be rebuilt after a crash.

Layout: ``<db>.segments/NNNNNNNN.seg`` (waveforms) and ``NNNNNNNN.vseg`` (the rest), numbered
together, each starting with ``WGWSEG01`` and the first record id it holds (u64), then
batches: ``WGWB``, u32 body length, u32 CRC-32 of the body, the body = u32 length of the zlib'd
JSON list of record fields, that list, then the payloads back to back.
A torn batch at the end of a lane's last file (a power cut mid-write) fails its CRC and is cut off.

Power cuts: a new file is fsynced with its folder before a record goes into it, a removal is
followed by an fsync of the folder, and a file that comes back from a cut unreadable (empty,
zeros, a bad header) is moved to ``damaged/`` and counted at open (:meth:`SegmentLog.check`).

Size: one class over 300 lines, on purpose: the file format, the appends and the recovery
(check, replay, torn tails) must agree byte for byte, so they are read together.
"""

from __future__ import annotations

import contextlib
import heapq
import json
import logging
import os
import struct
import time
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from buffers.records import ClockStamp, OutboxRecord, SetAside

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from pathlib import Path

log = logging.getLogger(__name__)

_FILE_MAGIC: Final = b"WGWSEG01"
_FILE_HEADER: Final = struct.Struct("<8sQ")
_BATCH_MAGIC: Final = b"WGWB"
_BATCH_HEADER: Final = struct.Struct("<4sII")
_META_LEN: Final = struct.Struct("<I")
SEGMENT_MAX_BYTES: Final = 8 << 20
_READ_RUN_MAX_BYTES: Final = 1 << 20
LANES: Final = ("seg", "vseg")  # waveforms; the rest


def fsync_folder(folder: Path) -> None:
    """Make the names in ``folder`` durable (a created, renamed or removed file)."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class SegmentFullError(OSError):
    """The byte budget (``limit_bytes``) would be exceeded: what a full disk looks like."""


def make_folder(folder: Path) -> None:
    """Create ``folder`` (and its parents) durably: each new name fsynced in its parent."""
    if folder.is_dir():
        return
    make_folder(folder.parent)
    folder.mkdir(exist_ok=True)
    fsync_folder(folder.parent)


@dataclass(frozen=True, slots=True)
class Placed:
    """Where one record's payload went."""

    seg: int
    offset: int


@dataclass(frozen=True, slots=True)
class Replayed:
    """A record read back from the log, with its id and where its payload lies."""

    id: int
    record: OutboxRecord
    stored_s: float
    placed: Placed


def folder_for(db_path: Path) -> Path:
    """The segment folder that belongs to a database file."""
    return db_path.with_name(db_path.name + ".segments")


class _Lane:
    """One series of files: the one being written and its size."""

    def __init__(self, suffix: str) -> None:
        self.suffix = suffix
        self.fd: int | None = None
        self.current: int | None = None
        self.size = 0

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
        self.fd, self.current = None, None


@dataclass(frozen=True, slots=True)
class Mark:
    """Where each lane an append wrote to stood before it (for :meth:`SegmentLog.undo`)."""

    lanes: tuple[tuple[str, Placed], ...]


class SegmentLog:
    """Append batches, read payloads, drop whole files; one writer (the outbox's).

    Two lanes of files share one numbering: waveforms in ``.seg`` files (and everything, in
    files from before the lanes), all the rest (vitals, gap markers, events) in ``.vseg``
    files. Why: undelivered vitals are kept to the last, and a file goes only once none of its
    rows is left; a vital in every waveform file would keep them all.
    """

    def __init__(self, folder: Path, *, max_bytes: int = SEGMENT_MAX_BYTES) -> None:
        self.folder = folder
        self._max_bytes = max_bytes
        self._budget: int | None = None
        self._lanes = {suffix: _Lane(suffix) for suffix in LANES}
        self._suffixes: dict[int, str] = {}
        self._readers: dict[int, int] = {}
        self._first_ids: dict[int, int] = {}
        self._retired: set[int] = set()
        self.set_aside: list[SetAside] = []  # what replays could not read, since open
        make_folder(folder)

    # --- files --------------------------------------------------------------------------------

    def numbers(self, lane: str | None = None) -> list[int]:
        """The segment files present (of one lane, or all), oldest first."""
        found = {}
        for suffix in LANES:
            for p in self.folder.glob(f"*.{suffix}"):
                if p.stem.isdigit():
                    found[int(p.stem)] = suffix
        self._suffixes.update(found)
        return sorted(n for n, suffix in found.items() if lane in {None, suffix})

    def live_numbers(self, lane: str | None = None) -> list[int]:
        """The segment files present and not retired, oldest first."""
        return [n for n in self.numbers(lane) if n not in self._retired]

    def id_ranges(self) -> list[tuple[int, int, int]]:
        """(segment, first id, last id) of each live file; a lane's last one's range is open.

        The lanes' ranges overlap: a file holds the ids of its range that are in its lane.
        """
        ranges = []
        for lane in LANES:
            numbers = self.live_numbers(lane)
            ranges += [
                (seg, self.first_id(seg), self.first_id(nxt) - 1 if nxt is not None else 2**62)
                for seg, nxt in zip(numbers, [*numbers[1:], None], strict=False)  # none: empty
            ]
        return sorted(ranges)

    def path(self, seg: int) -> Path:
        """The file of segment ``seg``."""
        if seg not in self._suffixes:
            self.numbers()
        return self.folder / f"{seg:08d}.{self._suffixes.get(seg, LANES[0])}"

    def first_id(self, seg: int) -> int:
        """The first record id segment ``seg`` was opened for."""
        if seg in self._first_ids:
            return self._first_ids[seg]
        with self.path(seg).open("rb") as f:
            magic, first = _FILE_HEADER.unpack(f.read(_FILE_HEADER.size))
        if magic != _FILE_MAGIC:
            msg = f"{self.path(seg)} is not a segment file"
            raise ValueError(msg)
        self._first_ids[seg] = int(first)
        return int(first)

    def total_bytes(self) -> int:
        """Bytes of the segment files not retired."""
        return sum(self.path(n).stat().st_size for n in self.live_numbers())

    def limit_bytes(self, budget: int | None) -> None:
        """Refuse appends (``SegmentFullError``) that would take the files past ``budget``."""
        self._budget = budget

    def retire(self, seg: int) -> int:
        """Mark a whole segment file for removal at the next :meth:`purge`; its bytes.

        The caller knows none of its records is stored any more; the file stays on disk until
        the index that says so has committed (a crash before that still finds the payloads).
        """
        for lane in self._lanes.values():
            if lane.current == seg:
                lane.close()
        fd = self._readers.pop(seg, None)
        if fd is not None:
            os.close(fd)
        self._retired.add(seg)
        return self.path(seg).stat().st_size

    @property
    def retired(self) -> bool:
        """Whether files wait for :meth:`purge`."""
        return bool(self._retired)

    def purge(self) -> None:
        """Remove the retired files; the caller has made the index that forgot them durable."""
        if not self._retired:
            return
        for seg in sorted(self._retired):
            self.path(seg).unlink(missing_ok=True)
            self._first_ids.pop(seg, None)
            self._suffixes.pop(seg, None)
        self._retired.clear()
        fsync_folder(self.folder)

    def check(self) -> list[SetAside]:
        """Move every file whose header cannot be read to ``damaged/``; what was moved.

        After a power cut a file created just before it can come back empty or zero-filled:
        it held nothing durable (records go into a file only after it and its name are on
        disk), and it must not stop the store from opening.
        """
        moved: list[SetAside] = []
        for seg in self.numbers():
            path = self.path(seg)
            with path.open("rb") as f:
                header = f.read(_FILE_HEADER.size)
            if len(header) == _FILE_HEADER.size and header.startswith(_FILE_MAGIC):
                continue
            size = path.stat().st_size
            reason = "empty" if size == 0 else "no segment header"
            damaged = self.folder / "damaged"
            damaged.mkdir(exist_ok=True)
            path.rename(damaged / f"{path.name}.{int(time.time())}")
            fsync_folder(damaged)
            self._suffixes.pop(seg, None)
            moved.append(SetAside(path.name, size, reason))
        if moved:
            fsync_folder(self.folder)
        return moved

    def close(self) -> None:
        """Close every file descriptor."""
        for lane in self._lanes.values():
            lane.close()
        for fd in self._readers.values():
            os.close(fd)
        self._readers.clear()

    # --- writing ------------------------------------------------------------------------------

    def append(
        self, batch: Sequence[tuple[int, OutboxRecord]], stored_s: float
    ) -> tuple[Mark, list[Placed]]:
        """Append one group commit, each record to its lane; nothing is fsynced here.

        Returns where the lanes stood (for :meth:`undo`) and where each payload lies, in the
        batch's order. A group larger than a segment goes as several entries, so that files
        stay small enough to be freed.

        Raises:
            SegmentFullError: The byte budget is exhausted (nothing of the group stays).
            OSError: The disk refused the write (ENOSPC); nothing of the group stays.
        """
        parts: dict[str, list[int]] = {}
        for i, (_, r) in enumerate(batch):
            parts.setdefault(lane_of(r), []).append(i)
        placed: list[Placed] = [Placed(0, 0)] * len(batch)
        marks: list[tuple[str, Placed]] = []
        try:
            for suffix, indices in parts.items():
                lane = self._lanes[suffix]
                if lane.fd is None:
                    self._rotate(lane, batch[indices[0]][0], 0)
                assert lane.current is not None
                marks.append((suffix, Placed(lane.current, lane.size)))
                where = self._append_lane(lane, [batch[i] for i in indices], stored_s)
                for i, p in zip(indices, where, strict=True):
                    placed[i] = p
        except OSError:
            self.undo(Mark(tuple(marks)))
            raise
        return Mark(tuple(marks)), placed

    def _append_lane(
        self, lane: _Lane, batch: Sequence[tuple[int, OutboxRecord]], stored_s: float
    ) -> list[Placed]:
        placed: list[Placed] = []
        part: list[tuple[int, OutboxRecord]] = []
        size = 0
        for item in batch:
            if part and size + len(item[1].payload) > self._max_bytes // 2:
                placed += self._append_entry(lane, part, stored_s)
                part, size = [], 0
            part.append(item)
            size += len(item[1].payload)
        return placed + self._append_entry(lane, part, stored_s)

    def _append_entry(
        self, lane: _Lane, batch: Sequence[tuple[int, OutboxRecord]], stored_s: float
    ) -> list[Placed]:
        meta = zlib.compress(
            json.dumps(
                {"stored_s": stored_s, "records": [_fields(i, r) for i, r in batch]},
                separators=(",", ":"),
            ).encode(),
            6,
        )
        body = b"".join([_META_LEN.pack(len(meta)), meta, *(r.payload for _, r in batch)])
        entry = _BATCH_HEADER.pack(_BATCH_MAGIC, len(body), zlib.crc32(body)) + body
        if lane.fd is None or lane.size + len(entry) > self._max_bytes:
            self._rotate(lane, batch[0][0], len(entry))
        assert lane.fd is not None
        assert lane.current is not None
        if self._budget is not None and self.total_bytes() + len(entry) > self._budget:
            raise SegmentFullError(28, "segment budget exhausted")
        start = lane.size
        try:
            written = os.write(lane.fd, entry)
        except OSError:
            os.ftruncate(lane.fd, start)
            raise
        if written != len(entry):  # a short write: the disk is full
            os.ftruncate(lane.fd, start)
            raise OSError(28, "short write to a segment file")
        lane.size += written
        offset = start + _BATCH_HEADER.size + _META_LEN.size + len(meta)
        placed = []
        for _, r in batch:
            placed.append(Placed(lane.current, offset))
            offset += len(r.payload)
        return placed

    def undo(self, mark: Mark) -> None:
        """Take back everything appended since ``mark`` (the index refused that group)."""
        for suffix, at in mark.lanes:
            lane = self._lanes[suffix]
            for seg in self.numbers(suffix):
                if seg > at.seg:
                    if seg == lane.current:
                        lane.close()
                    self.path(seg).unlink(missing_ok=True)
                    self._suffixes.pop(seg, None)
                    with contextlib.suppress(OSError):  # the disk may be what failed
                        fsync_folder(self.folder)
            if lane.fd is not None and at.seg == lane.current:
                os.ftruncate(lane.fd, at.offset)
                lane.size = at.offset
            elif self.path(at.seg).exists():
                with self.path(at.seg).open("r+b") as f:
                    f.truncate(at.offset)

    def sync(self) -> None:
        """Flush the files being written to disk (before an index pointing into them commits)."""
        for lane in self._lanes.values():
            if lane.fd is not None:
                os.fsync(lane.fd)

    def _rotate(self, lane: _Lane, first_id: int, entry_bytes: int) -> None:
        if self._budget is not None and self.total_bytes() + _FILE_HEADER.size + entry_bytes > (
            self._budget
        ):
            raise SegmentFullError(28, "segment budget exhausted")
        if lane.fd is not None:
            os.fsync(lane.fd)
            lane.close()
        numbers = self.numbers()
        seg = (numbers[-1] + 1) if numbers else 1
        self._suffixes[seg] = lane.suffix
        fd = os.open(self.path(seg), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o640)
        try:
            # The header and the name on disk before any record goes in: a cut then finds
            # either no file or a readable one, in every mode.
            os.write(fd, _FILE_HEADER.pack(_FILE_MAGIC, first_id))
            os.fsync(fd)
            fsync_folder(self.folder)
        except OSError:
            os.close(fd)
            self.path(seg).unlink(missing_ok=True)
            self._suffixes.pop(seg, None)
            raise
        lane.fd, lane.current, lane.size = fd, seg, _FILE_HEADER.size

    # --- reading ------------------------------------------------------------------------------

    def read(self, seg: int, offset: int, size: int) -> bytes:
        """One payload."""
        fd = self._readers.get(seg)
        if fd is None:
            fd = self._readers[seg] = os.open(self.path(seg), os.O_RDONLY)
        return os.pread(fd, size, offset)

    def read_many(self, spans: Sequence[tuple[int, int, int]]) -> list[bytes]:
        """Payloads of ``(seg, offset, size)`` spans: one read per run of neighbours."""
        out: list[bytes] = [b""] * len(spans)
        order = sorted(range(len(spans)), key=lambda i: spans[i][:2])
        run: list[int] = []

        def flush() -> None:
            seg, start = spans[run[0]][0], spans[run[0]][1]
            end = max(spans[i][1] + spans[i][2] for i in run)
            block = self.read(seg, start, end - start)
            for i in run:
                _, offset, size = spans[i]
                out[i] = block[offset - start : offset - start + size]

        for i in order:
            seg, offset, _ = spans[i]
            if run and (seg != spans[run[0]][0] or offset - spans[run[0]][1] > _READ_RUN_MAX_BYTES):
                flush()
                run = []
            run.append(i)
        if run:
            flush()
        return out

    def payload(
        self, inline: bytes | None, seg: int | None, offset: int | None, size: int
    ) -> bytes:
        """A row's payload: inline (rows from before schema 5), or read from its segment."""
        if seg is None or offset is None:
            return bytes(inline or b"")
        return self.read(seg, offset, size)

    def replay(self, after_id: int) -> Iterator[Replayed]:
        """Every record with an id above ``after_id``, in id order; a torn tail is cut off."""
        return heapq.merge(*(self._replay_lane(lane, after_id) for lane in LANES), key=_by_id)

    def _replay_lane(self, lane: str, after_id: int) -> Iterator[Replayed]:
        numbers = self.numbers(lane)
        start = 0
        for i, seg in enumerate(numbers):
            if self.first_id(seg) <= after_id + 1:
                start = i
        for i, seg in enumerate(numbers[start:], start):
            yield from self._replay_file(seg, after_id, last=i == len(numbers) - 1)

    def _replay_file(self, seg: int, after_id: int, *, last: bool) -> Iterator[Replayed]:
        path = self.path(seg)
        data = path.read_bytes()
        pos = _FILE_HEADER.size
        while pos < len(data):
            header = data[pos : pos + _BATCH_HEADER.size]
            ok = len(header) == _BATCH_HEADER.size
            if ok:
                magic, length, crc = _BATCH_HEADER.unpack(header)
                body = data[pos + _BATCH_HEADER.size : pos + _BATCH_HEADER.size + length]
                ok = magic == _BATCH_MAGIC and len(body) == length and zlib.crc32(body) == crc
            if not ok:
                if last:  # a power cut mid-append: the tail never reached the disk whole
                    reason = "a torn batch at the end, cut off"
                    with path.open("r+b") as f:
                        f.truncate(pos)
                else:
                    reason = "an unreadable batch; the rest of the file skipped"
                self.set_aside.append(SetAside(path.name, len(data) - pos, reason))
                log.debug(  # the outbox says it once, with the rest set aside
                    "segment %s: %s (%d bytes from byte %d)",
                    path.name,
                    reason,
                    len(data) - pos,
                    pos,
                )
                return
            body_start = pos + _BATCH_HEADER.size
            yield from _unpack(seg, body, body_start, after_id)
            pos = body_start + length


def lane_of(record: OutboxRecord) -> str:
    """The lane (file suffix) a record's payload goes to."""
    return LANES[0] if record.kind == "waveform" else LANES[1]


def _by_id(r: Replayed) -> int:
    return r.id


def _fields(record_id: int, r: OutboxRecord) -> list[Any]:
    c = r.clock
    return [
        record_id,
        r.kind,
        r.device_id,
        r.stream,
        r.seq,
        r.t0_s,
        r.sample_rate_hz,
        r.dtype,
        list(r.shape) if r.shape is not None else None,
        r.encoding,
        [c.boot_id, c.offset_s, c.synced] if c else None,
        r.participant_id,
        r.session_id,
        len(r.payload),
        r.backfilled,
        r.source_key,
        r.source_cursor,
    ]


def _unpack(seg: int, body: bytes, body_start: int, after_id: int) -> Iterator[Replayed]:
    (meta_len,) = _META_LEN.unpack_from(body)
    meta = json.loads(zlib.decompress(body[_META_LEN.size : _META_LEN.size + meta_len]))
    offset = _META_LEN.size + meta_len
    for f in meta["records"]:
        (rid, kind, device, stream, seq, t0, rate, dtype, shape, encoding, clock) = f[:11]
        participant, session, size = f[11:14]
        backfilled, key, cursor = f[14:17] if len(f) > 14 else (False, None, None)  # schema 6
        if rid > after_id:
            record = OutboxRecord(
                kind,
                device,
                stream,
                seq,
                t0,
                body[offset : offset + size],
                sample_rate_hz=rate,
                dtype=dtype,
                shape=tuple(shape) if shape is not None else None,
                encoding=encoding,
                clock=ClockStamp(*clock) if clock else None,
                participant_id=participant,
                session_id=session,
                backfilled=bool(backfilled),
                source_key=key,
                source_cursor=cursor,
            )
            yield Replayed(rid, record, meta["stored_s"], Placed(seg, body_start + offset))
        offset += size
