"""The writer a power-cut test cuts, run as ``python -m tests.buffers.power_cut_child``.

``ARGS``: ``DB MODE RUN MOMENT NTH``. It opens an outbox at DB (``synchronous=MODE``, a small
cap so that segments rotate and eviction purges files all the time), then writes vitals,
waveforms and backfill-like records (a source key and cursor each), acks sink ``a`` behind
them, and corrects the clock now and then. It prints what it was told is committed:

- ``C SEQ``: every record up to SEQ is committed (a group commit returned),
- ``I SEQ``: the index committed with every record up to SEQ (the log fsynced before it),
- ``A SEQ``: sink ``a`` acked every record up to SEQ, of any run (durable with the next ``I``).

``MOMENT`` other than ``none`` cuts power from inside at the NTH time the writer reaches that
point (a profile hook: the code runs unchanged), prints ``CUT`` and kills itself (SIGKILL).
Sequence numbers are ``RUN * 1_000_000 + i``.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any, Final

from buffers import recovery, retention
from buffers.outbox import Outbox, writer
from buffers.outbox import clock as corrections
from buffers.outbox.index import Index
from buffers.records import ClockStamp, OutboxRecord
from buffers.segments import SegmentLog
from tests.power import Cutter

SUBSCRIPTIONS = {"a": lambda r: True, "b": lambda r: r.kind != "waveform"}
RUN_SPAN: Final = 1_000_000


def payload(seq: int, kind: str) -> bytes:
    """What a record of ``seq`` holds: checked byte for byte after each cut."""
    unit = f"{kind}{seq};".encode()
    return unit * (200 if kind == "waveform" else 3)


def record(seq: int, offset_s: float) -> OutboxRecord:
    clock = ClockStamp("boot", offset_s, False)
    match seq % 10:
        case 0 | 1 | 2 | 3 | 4 | 5 | 6:
            return OutboxRecord(
                "waveform", "d", "ecg", seq, 1e9 + seq, payload(seq, "waveform"),
                130.0, "<i4", (100, 1), clock=clock,
            )  # fmt: skip
        case 7:
            return OutboxRecord(
                "vital", "d", "bp", seq, 1e9 + seq, payload(seq, "vital"), clock=clock,
                backfilled=True, source_key=str(seq), source_cursor=seq,
            )  # fmt: skip
        case _:
            return OutboxRecord(
                "vital", "d", "hr", seq, 1e9 + seq, payload(seq, "vital"), clock=clock
            )


# Where a cut lands: (function, what inside it). ``call``: as it starts; ``return``: as it
# ends; another name: just before the function calls a function of that name.
MOMENTS: Final[dict[str, tuple[Any, str]]] = {
    "rotation": (SegmentLog._rotate, "fsync"),  # the new file's header written, not synced
    "index_commit": (Index.commit_index, "return"),  # right after the index committed
    "purge": (SegmentLog.purge, "unlink"),  # files going, the index that forgot them committed
    "eviction": (retention.evict, "call"),
    "clock_correction": (corrections._move_untrusted, "return"),
    "recovery": (SegmentLog._replay_file, "call"),  # the open replaying the log
    "prepare": (recovery.prepare, "return"),  # the open's integrity check and migrations done
    "backfill": (writer._new_readings, "return"),  # keys and cursors of a batch checked
}


def say(line: str) -> None:
    os.write(1, line.encode() + b"\n")


async def write(path: Path, mode: str, run: int) -> None:
    async with Outbox(
        path,
        SUBSCRIPTIONS,
        flush_interval_ms=5,
        synchronous="full" if mode == "full" else "normal",
        max_db_mb=4,  # 512 KB segments: rotations, evictions and purges every second
        index_interval_s=0.15,
    ) as outbox:
        say(f"open {outbox.replayed}")
        seq, offset = run * RUN_SPAN, 1.7e9
        while True:
            for _ in range(20):
                await outbox.put(record(seq, offset))
                seq += 1
            index = seq % 200 == 0
            await outbox.flush(index=index)
            await asyncio.sleep(0.01)  # ~2,000 records/s: a store of ten cuts stays under its cap
            say(f"{'I' if index else 'C'} {seq - 1}")
            rows = await outbox.lease("a", 15)
            if rows:
                await outbox.ack("a", [r.id for r in rows])
                say(f"A {rows[-1].record.seq}")
            if seq % 300 == 0:
                offset += 2.0
                at = asyncio.get_running_loop().time()
                await outbox.correct_clock(
                    "boot", offset, at_mono_s=at, offset_before_s=offset - 2, synced=True
                )


def main() -> None:
    db, mode, run, moment, nth = sys.argv[1:6]
    path = Path(db)
    if moment != "none":
        function, event = MOMENTS[moment]
        Cutter(path.parent, function, event, int(nth)).install()
    asyncio.run(write(path, mode, int(run)))


if __name__ == "__main__":
    main()
