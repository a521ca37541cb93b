"""Real power cuts: an ext4 image on a loop device, cut with the kernel's shutdown ioctl.

Each cut: a writer (``power_cut_child``) on the mounted image; the power goes (at a random
moment, or from inside the writer at a dangerous one); SIGKILL; unmount; mount (the journal
replays); then the store must open, pass ``integrity_check``, hold every row the mode promises
exactly once, let every sink lease and read every row, and carry a real ``wgw run``. The seed
is printed on failure; ``WGW_POWER_CUTS`` sets the cuts per mode.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sqlite3
import sys
from collections import defaultdict
from contextlib import closing, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from buffers.outbox import Outbox
from tests.buffers.power_cut_child import MOMENTS, RUN_SPAN, SUBSCRIPTIONS, payload
from tests.power import cut_power
from tests.support import wait_for_daemon_exit, write_daemon_config

if TYPE_CHECKING:
    from tests.power import Image

ROOT = Path(__file__).resolve().parents[2]
CUTS = int(os.environ.get("WGW_POWER_CUTS", "50"))
STORE_GENERATION = 10  # cuts on one store before a fresh filesystem (bounds its size)


@dataclass
class Told:
    """What the writers said was committed, per run (see ``power_cut_child``)."""

    committed: dict[int, int] = field(default_factory=dict)  # run -> newest seq committed
    indexed: dict[int, int] = field(default_factory=dict)  # run -> newest seq indexed
    acked_indexed: dict[int, int] = field(default_factory=dict)  # acked before an index commit
    acked: dict[int, int] = field(default_factory=dict)

    def hear(self, run: int, line: str) -> None:
        tag, _, value = line.partition(" ")
        if tag == "C":
            self.committed[run] = int(value)
        elif tag == "I":
            self.committed[run] = self.indexed[run] = int(value)
            self.acked_indexed = dict(self.acked)
        elif tag == "A":  # rows of earlier runs too: a sink acks in id order
            self.acked[int(value) // RUN_SPAN] = int(value)

    def promised(self, run: int, mode: str) -> int:
        """The newest seq of ``run`` the mode promises to keep through a cut (-1: none)."""
        table = self.committed if mode == "full" else self.indexed
        return table.get(run, run * RUN_SPAN - 1)


async def cut_once(
    image: Image, mode: str, run: int, moment: str, *, rng: random.Random, told: Told
) -> bool:
    """One writer, one cut; whether the cut landed where it was aimed."""
    nth = 1 if moment in {"prepare", "recovery"} else rng.randint(1, 4)
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.buffers.power_cut_child",
        str(image.mount / "wgw.sqlite"), mode, str(run), "none" if moment == "random" else moment,
        str(nth),
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert child.stdout is not None
    landed = False

    async def listen() -> None:
        nonlocal landed
        assert child.stdout is not None
        while line := (await child.stdout.readline()).decode().strip():
            if line == "CUT":
                landed = True
            told.hear(run, line)

    listener = asyncio.create_task(listen())
    try:
        if moment == "random":
            await asyncio.sleep(rng.uniform(0.0, 1.2))  # from the start: during the open too
        else:
            # the writer cuts itself when it gets there; if it never does, cut now
            await asyncio.wait_for(asyncio.shield(child.wait()), 8.0)
    except TimeoutError:
        pass
    cut_power(image.mount)  # again if the writer did: a no-op on a filesystem already cut
    with suppress(ProcessLookupError):
        child.send_signal(signal.SIGKILL)
    await child.wait()
    await listener
    assert child.stderr is not None
    errors = (await child.stderr.read()).decode()
    assert child.returncode == -signal.SIGKILL, f"the writer ended by itself:\n{errors}"
    return landed


async def check_store(path: Path, mode: str, told: Told, runs: range) -> None:
    """After a cut: the store opens whole, and holds what the mode promises, exactly once."""
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    async with Outbox(path, SUBSCRIPTIONS) as outbox:
        history = await outbox.history(lambda r: r.device_id == "d", 0, 10**7)  # not wgw run's
        leases = {sink: await outbox.lease(sink, 10**7) for sink in SUBSCRIPTIONS}
        stats = await outbox.statistics()
        cursor = await outbox.cursor("d", "bp")
    seqs = [r.record.seq for r in history]
    assert len(seqs) == len(set(seqs)), "a record is stored twice"
    assert seqs == sorted(seqs), "rows out of order"
    for r in history:
        assert r.record.payload == payload(r.record.seq, r.record.kind), f"seq {r.record.seq}"
    assert [r.record.seq for r in leases["b"]] == [s for s in seqs if s % 10 > 6]
    present = set(seqs)
    evicted_waveforms = sum(v for k, v in stats.evicted.items() if k.endswith(".waveform"))
    assert not [k for k in stats.evicted if not k.endswith(".waveform")], stats.evicted
    missing_waveforms = 0
    for run in runs:
        promised = range(run * RUN_SPAN, told.promised(run, mode) + 1)
        missing = [s for s in promised if s not in present]
        vitals = [s for s in missing if s % 10 > 6]
        assert not vitals, f"run {run}: vitals promised by '{mode}' are gone: {vitals[:10]}"
        missing_waveforms += len(missing)
        acked = told.acked_indexed.get(run)
        if acked is not None:
            again = [r.record.seq for r in leases["a"] if run * RUN_SPAN <= r.record.seq <= acked]
            assert not again, f"run {run}: rows acked before an index commit came back: {again[:5]}"
    assert missing_waveforms <= evicted_waveforms, "waveforms gone without an eviction counted"
    bp = [s for s in seqs if s % 10 == 7]
    assert cursor == (max(bp) if bp else None), "the backfill cursor and its records disagree"


async def daemon_starts_on(tmp_path: Path, db: Path) -> None:
    """A real ``wgw run`` opens the store, runs, and stops cleanly on SIGTERM."""
    config = write_daemon_config(tmp_path / "daemon.yaml", db)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "run", "--config", str(config),
        cwd=ROOT, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None
    log = await wait_for_daemon_exit(proc, proc.stderr, after="running with", timeout_s=30)
    assert proc.returncode == 0, log


@pytest.mark.timeout(300)  # 50 cuts, each with a start of wgw run: about a minute
@pytest.mark.parametrize("mode", ["full", "normal"])
async def test_power_cuts_keep_what_each_mode_promises(
    image: Image, tmp_path: Path, mode: str
) -> None:
    """Test 50 real power cuts per mode, at random and at the dangerous moments."""
    seed = random.SystemRandom().randrange(1 << 30)
    rng = random.Random(seed)
    schedule = [*MOMENTS, "random", "random", "random", "random"]
    told = Told()
    aimed: dict[str, list[bool]] = defaultdict(list)
    first_run = 1
    db = image.mount / "wgw.sqlite"
    try:
        for run in range(1, CUTS + 1):
            moment = schedule[(run - 1) % len(schedule)]
            aimed[moment].append(await cut_once(image, mode, run, moment, rng=rng, told=told))
            image.unmount()
            image.mount_it()
            await check_store(db, mode, told, range(first_run, run + 1))
            await daemon_starts_on(tmp_path, db)
            if run % STORE_GENERATION == 0:
                image.unmount()
                image.make()
                image.mount_it()
                first_run = run + 1
    except BaseException:
        print(f"power cuts: seed {seed}, mode {mode}, cut {run} ({moment})")
        raise
    missed = [m for m, hits in aimed.items() if m != "random" and not any(hits)]
    assert not missed, f"no cut landed at {missed} (seed {seed})"
