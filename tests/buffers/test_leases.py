"""Leases over a backlog larger than the cache of built records."""

from __future__ import annotations

from typing import TYPE_CHECKING

from buffers.outbox import Outbox
from buffers.records import OutboxRecord

if TYPE_CHECKING:
    from pathlib import Path

WANTS = {"s": lambda r: True}


async def test_a_lease_past_the_built_cache_returns_every_row_in_order(tmp_path: Path) -> None:
    """Test a backlog of 25,000 readings read twice, the second time past the cache's 20,000.

    The second read finds its first 15,000 rows built by the first and builds 10,000 more; the
    cache then holds too many. It used to drop the oldest before the lookup, rows of this very
    read among them, and the lookup raised KeyError: a daemon with a large enough upload
    backlog died of it (issue 21's soak, after 25 minutes).
    """
    async with Outbox(tmp_path / "o.sqlite", WANTS, flush_interval_ms=50) as outbox:
        for i in range(25_000):
            await outbox.put(OutboxRecord("vital", "w", "heart_rate", i, float(i), b"{}"))
        await outbox.flush()
        assert len(await outbox.peek("s", 15_000)) == 15_000
        rows = await outbox.peek("s", 25_000)
        again = await outbox.lease("s", 25_000)
    assert [r.record.seq for r in rows] == list(range(25_000))
    assert [r.id for r in again] == [r.id for r in rows]
