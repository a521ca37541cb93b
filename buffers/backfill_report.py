"""Per device: readings fetched from its memory, gaps filled, gaps still open (``wgw queue``).

A gap row may be written twice: when the gap is found, and again once the device's records
filled it (the same stream and start, ``filled`` set); the latest row of a gap is its state.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Iterable

BACKFILLED_SQL: Final = (
    "SELECT device_id, COUNT(*), MIN(t0_s), MAX(t0_s) FROM records WHERE backfilled = 1"
    " GROUP BY device_id"
)
GAPS_SQL: Final = (
    "SELECT device_id, stream, t0_s, payload, seg, seg_offset, size FROM records"
    " WHERE kind = 'gap' ORDER BY id"
)
CURSORS_SQL: Final = "SELECT device_id, stream, cursor FROM source_cursors"


@dataclass(frozen=True, slots=True)
class OpenGap:
    """A stretch of one stream with no data that no record filled."""

    stream: str
    t0_s: float
    t1_s: float
    reason: str


@dataclass(frozen=True, slots=True)
class DeviceBackfill:
    """One device's backfill, as the file holds it."""

    device_id: str
    backfilled: int = 0  # readings fetched from the device's memory (retained)
    first_s: float | None = None  # the oldest and newest of them
    last_s: float | None = None
    gaps_filled: int = 0
    filled_s: float = 0.0
    open_gaps: tuple[OpenGap, ...] = ()  # oldest first
    open_s: float = 0.0
    cursors: dict[str, int] = field(default_factory=dict)  # stream -> newest record number


def summarize(
    backfilled: Iterable[tuple[str, int, float, float]],
    gaps: Iterable[tuple[str, str, float, bytes]],
    cursors: Iterable[tuple[str, str, int]],
) -> list[DeviceBackfill]:
    """The report from the three queries' rows (gap payloads read from wherever they lie)."""
    counts = {device: (n, first, last) for device, n, first, last in backfilled}
    states: dict[str, dict[tuple[str, float], tuple[float, str, bool]]] = defaultdict(dict)
    for device, stream, t0_s, payload in gaps:
        gap = json.loads(payload)
        states[device][(stream, round(t0_s, 3))] = (
            float(gap["t1_s"]),
            str(gap.get("reason", "")),
            bool(gap.get("filled", False)),
        )
    held: dict[str, dict[str, int]] = defaultdict(dict)
    for device, stream, cursor in cursors:
        held[device][stream] = cursor
    out = []
    for device in sorted({*counts, *states, *held}):
        n, first, last = counts.get(device, (0, None, None))
        filled = [(k, v) for k, v in states[device].items() if v[2]]
        open_gaps = tuple(
            sorted(
                (
                    OpenGap(stream, t0, t1, reason)
                    for (stream, t0), (t1, reason, done) in states[device].items()
                    if not done
                ),
                key=lambda g: (g.t0_s, g.stream),
            )
        )
        out.append(
            DeviceBackfill(
                device,
                n,
                first,
                last,
                len(filled),
                sum(t1 - t0 for (_, t0), (t1, _, _) in filled),
                open_gaps,
                sum(g.t1_s - g.t0_s for g in open_gaps),
                dict(held[device]),
            )
        )
    return out
