"""The outbox's segment log: every group commit appended once to a file, payloads kept there.

Why: SQLite in WAL mode writes every changed page twice (the WAL, then the checkpoint), and a
commit a second rewrites whole 4 KB pages; an append-only file writes each byte once. So the
payloads live here and nowhere else, and each batch also carries its records' fields, so that
the SQLite index, committed only every ``index_interval_s``, can be rebuilt after a crash.

Layout: ``<db>.segments/NNNNNNNN.seg``, each starting with ``WGWSEG01`` and the first record id
it holds (u64), then batches: ``WGWB``, u32 body length, u32 CRC-32 of the body, the body =
u32 length of the zlib'd JSON list of record fields, that list, then the payloads back to back.
A torn batch at the end of the last file (a power cut mid-write) fails its CRC and is cut off.
"""

from __future__ import annotations

import json
import logging
import os
import struct
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from buffers.records import ClockStamp, OutboxRecord

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


class SegmentFullError(OSError):
    """The byte budget (``limit_bytes``) would be exceeded: what a full disk looks like."""


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


class SegmentLog:
    """Append batches, read payloads, drop whole files; one writer (the outbox's)."""

    def __init__(self, folder: Path, *, max_bytes: int = SEGMENT_MAX_BYTES) -> None:
        self.folder = folder
        self._max_bytes = max_bytes
        self._budget: int | None = None
        self._fd: int | None = None
        self._current: int | None = None
        self._current_size = 0
        self._readers: dict[int, int] = {}
        self._first_ids: dict[int, int] = {}
        self._retired: set[int] = set()
        folder.mkdir(parents=True, exist_ok=True)

    # --- files --------------------------------------------------------------------------------

    def numbers(self) -> list[int]:
        """The segment files present, oldest first."""
        return sorted(int(p.stem) for p in self.folder.glob("*.seg") if p.stem.isdigit())

    def live_numbers(self) -> list[int]:
        """The segment files present and not retired, oldest first."""
        return [n for n in self.numbers() if n not in self._retired]

    def id_ranges(self) -> list[tuple[int, int, int]]:
        """(segment, first id, last id) of each live file; the last one's range is open."""
        numbers = self.live_numbers()
        return [
            (seg, self.first_id(seg), self.first_id(nxt) - 1 if nxt is not None else 2**62)
            for seg, nxt in zip(numbers, [*numbers[1:], None], strict=True)
        ]

    def path(self, seg: int) -> Path:
        """The file of segment ``seg``."""
        return self.folder / f"{seg:08d}.seg"

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
        if seg == self._current and self._fd is not None:
            os.close(self._fd)
            self._fd, self._current = None, None
        fd = self._readers.pop(seg, None)
        if fd is not None:
            os.close(fd)
        self._retired.add(seg)
        return self.path(seg).stat().st_size

    def purge(self) -> None:
        """Remove the retired files (the index that forgot their rows has committed)."""
        for seg in sorted(self._retired):
            self._first_ids.pop(seg, None)
            self.path(seg).unlink(missing_ok=True)
        self._retired.clear()

    def close(self) -> None:
        """Close every file descriptor."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            self._current = None
        for fd in self._readers.values():
            os.close(fd)
        self._readers.clear()

    # --- writing ------------------------------------------------------------------------------

    def append(
        self, batch: Sequence[tuple[int, OutboxRecord]], stored_s: float
    ) -> tuple[Placed, list[Placed]]:
        """Append one group commit; nothing is fsynced here.

        Returns where it starts (for :meth:`undo`) and where each payload lies. A group larger
        than a segment goes as several entries, so that files stay small enough to be freed.

        Raises:
            SegmentFullError: The byte budget is exhausted (nothing of the group stays).
            OSError: The disk refused the write (ENOSPC); nothing of the group stays.
        """
        if self._fd is None:
            self._rotate(batch[0][0], 0)
        assert self._current is not None
        mark = Placed(self._current, self._current_size)
        placed: list[Placed] = []
        try:
            part: list[tuple[int, OutboxRecord]] = []
            size = 0
            for item in batch:
                if part and size + len(item[1].payload) > self._max_bytes // 2:
                    placed += self._append_entry(part, stored_s)
                    part, size = [], 0
                part.append(item)
                size += len(item[1].payload)
            placed += self._append_entry(part, stored_s)
        except OSError:
            self.undo(mark)
            raise
        return mark, placed

    def _append_entry(
        self, batch: Sequence[tuple[int, OutboxRecord]], stored_s: float
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
        if self._fd is None or self._current_size + len(entry) > self._max_bytes:
            self._rotate(batch[0][0], len(entry))
        assert self._fd is not None
        assert self._current is not None
        if self._budget is not None and self.total_bytes() + len(entry) > self._budget:
            raise SegmentFullError(28, "segment budget exhausted")
        start = self._current_size
        try:
            written = os.write(self._fd, entry)
        except OSError:
            os.ftruncate(self._fd, start)
            raise
        if written != len(entry):  # a short write: the disk is full
            os.ftruncate(self._fd, start)
            raise OSError(28, "short write to a segment file")
        self._current_size += written
        offset = start + _BATCH_HEADER.size + _META_LEN.size + len(meta)
        placed = []
        for _, r in batch:
            placed.append(Placed(self._current, offset))
            offset += len(r.payload)
        return placed

    def undo(self, mark: Placed) -> None:
        """Take back everything appended since ``mark`` (the index refused that group)."""
        for seg in self.numbers():
            if seg > mark.seg:
                if seg == self._current and self._fd is not None:
                    os.close(self._fd)
                    self._fd, self._current = None, None
                self.path(seg).unlink(missing_ok=True)
        if self._fd is not None and mark.seg == self._current:
            os.ftruncate(self._fd, mark.offset)
            self._current_size = mark.offset
        elif self.path(mark.seg).exists():
            with self.path(mark.seg).open("r+b") as f:
                f.truncate(mark.offset)

    def sync(self) -> None:
        """Flush the file being written to disk (before the index that points into it commits)."""
        if self._fd is not None:
            os.fsync(self._fd)

    def _rotate(self, first_id: int, entry_bytes: int) -> None:
        if self._budget is not None and self.total_bytes() + _FILE_HEADER.size + entry_bytes > (
            self._budget
        ):
            raise SegmentFullError(28, "segment budget exhausted")
        if self._fd is not None:
            os.fsync(self._fd)
            os.close(self._fd)
        numbers = self.numbers()
        seg = (numbers[-1] + 1) if numbers else 1
        fd = os.open(self.path(seg), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o640)
        try:
            os.write(fd, _FILE_HEADER.pack(_FILE_MAGIC, first_id))
        except OSError:
            os.close(fd)
            self.path(seg).unlink(missing_ok=True)
            raise
        self._fd, self._current, self._current_size = fd, seg, _FILE_HEADER.size

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
        """Every record with an id above ``after_id``, in order; a torn tail is cut off."""
        numbers = self.numbers()
        start = 0
        for i, seg in enumerate(numbers):
            if self.first_id(seg) <= after_id + 1:
                start = i
        for i, seg in enumerate(numbers[start:], start):
            yield from self._replay_file(seg, after_id, last=i == len(numbers) - 1)

    def _replay_file(self, seg: int, after_id: int, *, last: bool) -> Iterator[Replayed]:
        data = self.path(seg).read_bytes()
        pos = _FILE_HEADER.size
        while pos < len(data):
            header = data[pos : pos + _BATCH_HEADER.size]
            ok = len(header) == _BATCH_HEADER.size
            if ok:
                magic, length, crc = _BATCH_HEADER.unpack(header)
                body = data[pos + _BATCH_HEADER.size : pos + _BATCH_HEADER.size + length]
                ok = magic == _BATCH_MAGIC and len(body) == length and zlib.crc32(body) == crc
            if not ok:
                log.error("segment %d: a torn batch at byte %d; cut off", seg, pos)
                if last:
                    with self.path(seg).open("r+b") as f:
                        f.truncate(pos)
                return
            body_start = pos + _BATCH_HEADER.size
            yield from _unpack(seg, body, body_start, after_id)
            pos = body_start + length


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
    ]


def _unpack(seg: int, body: bytes, body_start: int, after_id: int) -> Iterator[Replayed]:
    (meta_len,) = _META_LEN.unpack_from(body)
    meta = json.loads(zlib.decompress(body[_META_LEN.size : _META_LEN.size + meta_len]))
    offset = _META_LEN.size + meta_len
    for f in meta["records"]:
        (rid, kind, device, stream, seq, t0, rate, dtype, shape, encoding, clock) = f[:11]
        participant, session, size = f[11:]
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
            )
            yield Replayed(rid, record, meta["stored_s"], Placed(seg, body_start + offset))
        offset += size
