"""The outbox's figures: what it counted in memory, and each sink's backlog as the file holds it."""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING

from buffers import retention
from buffers.records import OutboxStatistics, SinkBacklog

if TYPE_CHECKING:
    from collections.abc import Iterable

    from buffers.outbox.counts import Counts
    from buffers.outbox.index import Index


async def read(
    index: Index, counts: Counts, sinks: Iterable[str], *, full: bool, held: int
) -> OutboxStatistics:
    """Counters since open, each sink's backlog, evictions since the file was created."""
    backlog = {sink: SinkBacklog(0, 0) for sink in sinks}
    now = time.time()
    for row in await index.read(
        "SELECT p.sink, SUM(p.dead = 0) AS pending, SUM(p.dead = 1) AS dead,"
        " SUM(CASE WHEN p.dead = 0 THEN r.size ELSE 0 END) AS size,"
        " MIN(CASE WHEN p.dead = 0 THEN r.stored_s END) AS oldest"
        " FROM pending p JOIN records r ON r.id = p.record_id GROUP BY p.sink"
    ):
        age = now - row["oldest"] if row["oldest"] is not None else None
        backlog[row["sink"]] = SinkBacklog(row["pending"], row["dead"], row["size"] or 0, age)
    (total,) = await index.read("SELECT COUNT(*) AS n FROM records")
    counters = {
        str(row["name"]): int(row["value"])
        for row in await index.read("SELECT name, value FROM counters")
    }
    moved_aside = index.opened.moved_aside_to if index.opened is not None else None
    return OutboxStatistics(
        accepted=counts.accepted,
        committed=counts.committed,
        commits=counts.commits,
        backpressure_waits=counts.backpressure_waits,
        total_rows=total["n"],
        backlog=backlog,
        evicted=_prefixed(counters, "evicted."),
        discarded=dict(counts.discarded),
        storage_full=full,
        used_bytes=await retention.used_bytes(index.db, index.segments_if_open),
        corrupt_recoveries=counters.get("corrupt_recoveries", 0),
        evicted_samples=_prefixed(counters, "evicted_samples."),
        duplicates=counts.duplicates,
        held=held,
        set_aside=tuple(index.set_aside),
        set_aside_files=counters.get("set_aside.files", 0),
        index_rebuilt_from=str(moved_aside) if moved_aside is not None else None,
    )


def degraded(
    last: OutboxStatistics | None, counts: Counts, sinks: Iterable[str], failing: str, held: int
) -> OutboxStatistics:
    """While the store fails: what is counted in memory, the rest as last read."""
    before = last or OutboxStatistics(
        accepted=0,
        committed=0,
        commits=0,
        backpressure_waits=0,
        total_rows=0,
        backlog={sink: SinkBacklog(0, 0) for sink in sinks},
        evicted={},
        discarded={},
        storage_full=False,
        used_bytes=0,
        corrupt_recoveries=0,
    )
    return dataclasses.replace(
        before,
        accepted=counts.accepted,
        committed=counts.committed,
        commits=counts.commits,
        discarded=dict(counts.discarded),
        store_failing=failing,
        held=held,
    )


def _prefixed(counters: dict[str, int], prefix: str) -> dict[str, int]:
    return {k.removeprefix(prefix): v for k, v in counters.items() if k.startswith(prefix)}
