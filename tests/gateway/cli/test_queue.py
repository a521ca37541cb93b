"""`wgw queue`: backlog per sink, dead letters listed, and re-queued by `retry`."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING

from buffers.outbox import Outbox
from buffers.records import OutboxRecord

if TYPE_CHECKING:
    from pathlib import Path


def wgw(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", "queue", *args, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


async def test_stats_dead_letters_and_retry(tmp_path: Path) -> None:
    """Test the three actions against a real outbox file."""
    db = tmp_path / "wgw.sqlite"
    subscriptions = {"health_upload": lambda r: True, "mqtt": lambda r: True}
    async with Outbox(db, subscriptions, flush_interval_ms=5) as outbox:
        for i in range(5):
            await outbox.put(OutboxRecord("vital", "w1", "heart_rate", i, 1.8e9 + i, b"{}"))
        await outbox.flush()
        rows = await outbox.lease("health_upload", 2)
        await outbox.dead_letter("health_upload", [rows[0].id], "400 INVALID_PARAMETER: records[0]")
        await outbox.ack("health_upload", [rows[1].id])
    config = tmp_path / "c.yaml"
    config.write_text(f"storage: {{path: '{db}'}}\ncloud: {{tcm: {{api_key: k}}}}\n")

    stats = json.loads(wgw(config, "--json").stdout)
    sinks = {s["sink"]: s for s in stats["sinks"]}
    assert stats["rows"] == 5
    assert (sinks["health_upload"]["pending_rows"], sinks["health_upload"]["dead_letters"]) == (
        3,
        1,
    )
    assert sinks["mqtt"]["pending_rows"] == 5
    assert sinks["mqtt"]["pending_bytes"] == 10

    text = wgw(config).stdout
    assert "health_upload" in text and "evicted: none" in text

    letters = [
        json.loads(line) for line in wgw(config, "dead-letters", "--json").stdout.splitlines()
    ]
    assert [(d["sink"], d["seq"], d["error"]) for d in letters] == [
        ("health_upload", 0, "400 INVALID_PARAMETER: records[0]")
    ]
    assert json.loads(wgw(config, "retry", "--json").stdout) == {"requeued": 1}
    async with Outbox(db, subscriptions) as outbox:
        assert [r.record.seq for r in await outbox.lease("health_upload", 10)] == [0, 2, 3, 4]


def test_missing_outbox_is_an_error(tmp_path: Path) -> None:
    """Test a clear error, exit 1, when there is no database yet."""
    config = tmp_path / "c.yaml"
    config.write_text(
        f"storage: {{path: '{tmp_path / 'none.sqlite'}'}}\ncloud: {{tcm: {{api_key: k}}}}\n"
    )
    done = wgw(config)
    assert done.returncode == 1
    assert done.stderr.startswith("error: no outbox at")
