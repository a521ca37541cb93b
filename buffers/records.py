"""What the outbox stores: plain records that know nothing of devices or sinks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

RecordKind = Literal["vital", "waveform", "gap"]


@dataclass(frozen=True, slots=True)
class ClockStamp:
    """How a row's time was taken (``gateway/wallclock.py``)."""

    boot_id: str
    offset_s: float
    synced: bool | None


@dataclass(frozen=True, slots=True)
class OutboxRecord:
    """One row to keep until every sink that wants it has delivered it.

    Attributes:
        kind: ``vital`` (payload is JSON), ``waveform`` (payload is the samples' bytes) or
            ``gap`` (payload is JSON: ``t1_s`` and ``reason``; ``t0_s`` is the gap's start).
        stream: The stream within the device (``heart_rate``, ``ppg``, ...); sinks subscribe
            by stream.
        t0_s: UTC epoch seconds of the reading or of the chunk's first sample.
        dtype: numpy dtype string of a waveform's samples, e.g. ``<i4``.
        shape: Shape of a waveform's samples, ``(n_samples, n_channels)``.
        encoding: How the payload is packed (``raw``, or ``delta-zlib`` for waveforms); the
            outbox stores it and never looks inside.
        clock: The boot, the monotonic-to-UTC offset ``t0_s`` was computed with, and whether
            the system clock was synchronised then (``None``: not stamped, as before schema 3).
        participant_id: Who wore the device then; ``session_id``: their recording session.
        backfilled: Fetched from the device's memory after a gap, not received live.
        source_key: The reading's own identity at its source (a device timestamp): the outbox
            keeps one row per device, stream and key, and drops a second as a duplicate.
        source_cursor: Where the source stands after this record (a device's record sequence
            number): the outbox keeps the newest per device and stream (``Outbox.cursor``).
    """

    kind: RecordKind
    device_id: str
    stream: str
    seq: int
    t0_s: float
    payload: bytes
    sample_rate_hz: float | None = None
    dtype: str | None = None
    shape: tuple[int, ...] | None = None
    encoding: str = "raw"
    clock: ClockStamp | None = None
    participant_id: str | None = None
    session_id: int | None = None
    backfilled: bool = False
    source_key: str | None = None
    source_cursor: int | None = None


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """A record as committed, with the id that orders it."""

    id: int
    record: OutboxRecord


@dataclass(frozen=True, slots=True)
class SinkBacklog:
    """One sink's undelivered rows: count, payload bytes, age of the oldest, dead letters."""

    pending: int
    dead_letters: int
    pending_bytes: int = 0
    oldest_age_s: float | None = None


@dataclass(frozen=True, slots=True)
class SetAside:
    """A part of the store that could not be read: moved to ``damaged/`` or cut off, in bytes."""

    name: str
    bytes: int
    reason: str


@dataclass(frozen=True, slots=True)
class OutboxStatistics:
    """Counters of the outbox since it opened, and the backlog per sink."""

    accepted: int
    committed: int
    commits: int
    backpressure_waits: int
    total_rows: int
    backlog: dict[str, SinkBacklog]
    evicted: dict[str, int]
    discarded: dict[str, int]
    storage_full: bool
    used_bytes: int
    corrupt_recoveries: int
    evicted_samples: dict[str, int] = field(default_factory=dict)  # waveform samples, per tier
    duplicates: int = 0  # records dropped since open: their source key was held already
    store_failing: str | None = None  # why the disk refuses writes, while it does
    held: int = 0  # records in memory waiting for a failing store
    set_aside: tuple[SetAside, ...] = ()  # unreadable parts found at this open
    set_aside_files: int = 0  # since the file was created
    index_rebuilt_from: str | None = None  # the corrupt index moved aside at this open
