"""Child processes for the crash tests, run as ``python -m tests.buffers.crash_child``.

``write DB``: append numbered records as fast as it can, resuming after the highest stored
sequence number; after each group commit (to the segment log: the index commits every 50 ms
here, so kills land before, during and after index commits), print the last committed number.
``lease DB SINK``: lease rows for SINK, print their ids, and never ack (wait to be killed).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import sys
from pathlib import Path

from buffers.outbox import Outbox
from buffers.records import OutboxRecord

SUBSCRIPTIONS = {"s": lambda r: True}


async def write(path: Path) -> None:
    async with Outbox(
        path, SUBSCRIPTIONS, flush_interval_ms=10, index_interval_s=0.05
    ) as outbox:  # opening replays what the log holds beyond the index
        print(f"replayed {outbox.replayed}", flush=True)
        with contextlib.closing(sqlite3.connect(path)) as db:  # the replay has committed
            (top,) = db.execute("SELECT MAX(seq) FROM records").fetchone()
        seq = 0 if top is None else int(top) + 1
        while True:
            for _ in range(25):
                await outbox.put(OutboxRecord("vital", "d", "n", seq, float(seq), b"{}"))
                seq += 1
            await outbox.flush(index=False)
            print(seq - 1, flush=True)


async def lease(path: Path, sink: str) -> None:
    async with Outbox(path, SUBSCRIPTIONS) as outbox:
        rows = await outbox.lease(sink, 1000)
        print(" ".join(str(r.id) for r in rows), flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    command, db = sys.argv[1], Path(sys.argv[2])
    asyncio.run(write(db) if command == "write" else lease(db, sys.argv[3]))
