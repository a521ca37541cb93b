"""A power cut in the middle of a backfill transfer, in a real ``wgw run`` on a loop-mounted card.

The records a transfer stored, their source keys and the stream's cursor go into the store in
one commit; after any cut the keys name stored rows (a key without its row would turn the
reading away as a duplicate forever) and the cursor is never ahead of the records held (the
next transfer would skip the rest).
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import sys
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml

from buffers.outbox import Outbox
from tests.power import cut_power
from tests.support import daemon_config, free_port, wait_for_daemon_exit

if TYPE_CHECKING:
    from tests.power import Image

ROOT = Path(__file__).resolve().parents[2]
CUTS = 3  # per mode (each waits for a spell out of range: ~15 s)
CUFF = "5A:00:00:00:00:02"


def cuff_config(folder: Path, db: Path, synchronous: str) -> Path:
    """A cuff measuring every second, out of range for 6 s at the start of each run."""
    config = daemon_config(
        folder,
        f"http://127.0.0.1:{free_port()}",
        [
            {
                "model": "cuff",
                "address": CUFF,
                "blood_pressure_interval_s": 1,
                "faults": [{"kind": "out_of_range", "at_s": 0.5, "duration_s": 6}],
            }
        ],
        [{"id": "cuff", "address": CUFF}],
        storage={"path": str(db), "synchronous": synchronous, "flush_interval_ms": 50},
        ble={"scan_timeout_s": 0.5, "reconnect_max_s": 0.5},
    )
    path = folder / f"cuff-{synchronous}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def keys_and_cursor_agree(db: Path) -> None:
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        orphans = conn.execute(
            "SELECT COUNT(*) FROM source_keys k LEFT JOIN items i ON i.id = k.record_id"
            " WHERE i.id IS NULL"
        ).fetchone()[0]
        assert orphans == 0, f"{orphans} source keys name no stored row"
        cursor = conn.execute(
            "SELECT cursor FROM source_cursors WHERE device_id = 'cuff'"
        ).fetchone()
        backfilled = conn.execute(
            "SELECT COUNT(*) FROM records WHERE device_id = 'cuff' AND backfilled = 1"
        ).fetchone()[0]
    if cursor is not None:
        assert backfilled > 0, "a cursor stored without the records it stands after"


@pytest.mark.timeout(240)
@pytest.mark.parametrize("synchronous", ["full", "normal"])
async def test_a_cut_during_a_backfill_transfer_keeps_keys_cursor_and_rows_together(
    tmp_path: Path, image: Image, synchronous: str
) -> None:
    """Test cuts at random records of a transfer: the store opens whole, keys name rows, the
    cursor is not ahead of them, and the daemon starts and stops on the card.
    """
    seed = random.SystemRandom().randrange(1 << 30)
    rng = random.Random(seed)
    db = image.mount / "wgw.sqlite"
    config = cuff_config(tmp_path, db, synchronous)
    landed = 0
    for cut in range(CUTS):
        nth = rng.randint(1, 5)
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.gateway.cut_daemon", str(config), str(image.mount),
            str(nth),
            cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            out, _ = await asyncio.wait_for(process.communicate(), 30)
        except TimeoutError:
            cut_power(image.mount)
            process.kill()
            out, _ = await process.communicate()
        assert process.returncode == -9, f"wgw run ended by itself ({process.returncode})"
        landed += b"CUT" in out
        image.unmount()
        image.mount_it()
        try:
            keys_and_cursor_agree(db)
            async with Outbox(db, {}) as outbox:
                history = await outbox.history(lambda r: True, 0, 10**6)
            assert all(r.record.payload for r in history)
            starts = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "gateway", "run", "--config", str(config),
                cwd=ROOT, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            assert starts.stderr is not None
            said = await wait_for_daemon_exit(
                starts, starts.stderr, after="running with", timeout_s=30
            )
            assert starts.returncode == 0, said
            keys_and_cursor_agree(db)
        except BaseException:
            print(f"backfill cuts: seed {seed}, mode {synchronous}, cut {cut} (record {nth})")
            raise
    assert landed >= CUTS - 1, f"only {landed} of {CUTS} cuts landed in a transfer (seed {seed})"
