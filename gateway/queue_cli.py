"""``wgw queue``: the outbox's backlog per sink, its dead letters, and re-queueing them."""

from __future__ import annotations

import dataclasses
import json
import sys
from typing import TYPE_CHECKING

from buffers import inspect
from gateway.codec import iso_utc

if TYPE_CHECKING:
    from pathlib import Path


def run_queue(path: Path, action: str, sink: str | None, *, as_json: bool) -> int:
    """Print what ``action`` asks for; 1 if there is no outbox at ``path``."""
    try:
        if action == "retry":
            count = inspect.retry_dead_letters(path, sink)
            print(json.dumps({"requeued": count}) if as_json else f"re-queued {count} dead letters")
            return 0
        if action == "dead-letters":
            letters = inspect.dead_letters(path, sink)
            if as_json:
                for letter in letters:
                    print(json.dumps(dataclasses.asdict(letter)))
                return 0
            for d in letters:
                print(
                    f"{d.sink:<14}{d.record_id:>10}  {d.device_id:<14}{d.stream:<16}"
                    f"{iso_utc(d.t0_s)}  attempts {d.attempts}: {d.error}"
                )
            if not letters:
                print("no dead letters")
            return 0
        report = inspect.report(path)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if as_json:
        print(json.dumps(dataclasses.asdict(report)))
        return 0
    print(f"outbox {path}: {report.rows} rows")
    print(f"{'sink':<16}{'backlog':>10}{'bytes':>12}{'oldest':>10}{'dead':>8}")
    for s in report.sinks:
        if sink and s.sink != sink:
            continue
        age = f"{s.oldest_age_s:.0f} s" if s.oldest_age_s is not None else "-"
        print(f"{s.sink:<16}{s.pending_rows:>10}{s.pending_bytes:>12}{age:>10}{s.dead_letters:>8}")
    evicted = ", ".join(f"{k} {v}" for k, v in sorted(report.evicted.items())) or "none"
    print(f"evicted: {evicted}")
    if report.corrupt_recoveries:
        print(f"recovered from a corrupt file {report.corrupt_recoveries} time(s)")
    return 0
