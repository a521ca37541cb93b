"""Crash safety with real processes: SIGKILL at random moments loses nothing reported committed."""

from __future__ import annotations

import asyncio
import random
import signal
import sqlite3
import sys
from pathlib import Path

from buffers.outbox import Outbox
from buffers.records import OutboxRecord

ROOT = Path(__file__).resolve().parents[2]
KILLS = 24


async def spawn(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.buffers.crash_child",
        *args,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )


async def test_sigkill_never_loses_a_reported_commit_nor_duplicates(tmp_path: Path) -> None:
    """Test 24 SIGKILLs of a writer: every reported-committed frame present once, file sound."""
    path = tmp_path / "crash.sqlite"
    rng = random.Random(7)
    reported = -1
    replayed = 0
    for _ in range(KILLS):
        child = await spawn("write", str(path))
        assert child.stdout is not None
        first = await asyncio.wait_for(child.stdout.readline(), 30)
        replayed += int(first.split()[1])  # rows the log held beyond the index at restart
        line = await asyncio.wait_for(child.stdout.readline(), 30)  # it is writing
        reported = max(reported, int(line))

        async def read_reports(stream: asyncio.StreamReader) -> None:
            nonlocal reported
            while line := await stream.readline():
                reported = max(reported, int(line))

        reader = asyncio.create_task(read_reports(child.stdout))
        await asyncio.sleep(rng.uniform(0.01, 0.25))
        child.send_signal(signal.SIGKILL)
        await child.wait()
        await reader  # every line it printed before dying
    assert reported > 1000
    async with Outbox(path, {"s": lambda r: True}):  # a restart: the log replayed
        pass
    assert replayed > 0  # some kills landed between index commits: the log made up for them
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        seqs = [row[0] for row in db.execute("SELECT seq FROM records ORDER BY seq")]
    assert len(seqs) == len(set(seqs)), "a frame was stored twice"
    assert seqs[: reported + 1] == list(range(reported + 1)), "a reported commit is missing"


async def test_a_consumer_killed_before_ack_sees_its_rows_again(tmp_path: Path) -> None:
    """Test at-least-once: rows leased by a killed process come back; acked rows never do."""
    path = tmp_path / "o.sqlite"
    async with Outbox(path, {"s": lambda r: True}, flush_interval_ms=5) as outbox:
        for i in range(10):
            await outbox.put(OutboxRecord("vital", "d", "n", i, float(i), b"{}"))
        await outbox.flush()
        first = await outbox.lease("s", 3)
        await outbox.ack("s", [r.id for r in first])
    child = await spawn("lease", str(path), "s")
    assert child.stdout is not None
    leased = [int(i) for i in (await asyncio.wait_for(child.stdout.readline(), 30)).split()]
    child.send_signal(signal.SIGKILL)
    await child.wait()
    assert len(leased) == 7
    async with Outbox(path, {"s": lambda r: True}) as outbox:
        again = await outbox.lease("s", 100)
    assert [r.id for r in again] == leased
    assert not {r.id for r in first} & set(leased)
