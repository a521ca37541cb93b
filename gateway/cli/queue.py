"""``wgw queue``: backlog per sink, dead letters (and re-queueing them), recording sessions."""

from __future__ import annotations

import dataclasses
import json
import sys
from typing import TYPE_CHECKING, Any

from buffers import inspect
from gateway.cli.common import load
from gateway.codec import iso_utc

if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from pathlib import Path


@dataclasses.dataclass(frozen=True, slots=True)
class Selection:
    """What ``wgw queue`` was asked to look at."""

    sink: str | None = None
    participant: str | None = None
    session: int | None = None


def arguments(parser: argparse.ArgumentParser) -> None:
    """The action, what to select, ``--json``."""
    parser.add_argument(
        "action", nargs="?", choices=("stats", "dead-letters", "retry", "sessions"), default="stats"
    )
    parser.add_argument("--participant", default=None, help="stats and sessions of one participant")
    parser.add_argument("--session", type=int, default=None, help="stats of one session")
    parser.add_argument("--sink", default=None, help="only this sink")
    parser.add_argument("--json", action="store_true")


def run(args: argparse.Namespace) -> int:
    """What the action asks for, from the store config names."""
    selection = Selection(args.sink, args.participant, args.session)
    return run_queue(load(args).storage.path, args.action, selection, as_json=args.json)


def run_queue(path: Path, action: str, selection: Selection, *, as_json: bool) -> int:
    """Print what ``action`` asks for; 1 if there is no outbox at ``path``."""
    actions = {
        "stats": _stats,
        "dead-letters": _dead_letters,
        "retry": _retry,
        "sessions": _sessions,
    }
    try:
        actions[action](path, selection, as_json=as_json)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _lines(items: Sequence[Any], as_json: bool, text: list[str], empty: str) -> None:
    """One JSON object per item, or the text lines (``empty`` when there are none)."""
    if as_json:
        for item in items:
            print(json.dumps(dataclasses.asdict(item)))
        return
    print("\n".join(text) if text else empty)


def _sessions(path: Path, selection: Selection, *, as_json: bool) -> None:
    found = inspect.sessions(path, selection.participant)
    text = [
        f"{s.id:>5}  {s.participant_id:<12}{s.label or '-':<12}{iso_utc(s.started_s)} - "
        f"{iso_utc(s.stopped_s) if s.stopped_s else 'open'}  {s.rows} rows, {s.markers} markers"
        for s in found
    ]
    _lines(found, as_json, text, "no sessions")


def _retry(path: Path, selection: Selection, *, as_json: bool) -> None:
    count = inspect.retry_dead_letters(path, selection.sink)
    print(json.dumps({"requeued": count}) if as_json else f"re-queued {count} dead letters")


def _dead_letters(path: Path, selection: Selection, *, as_json: bool) -> None:
    letters = inspect.dead_letters(path, selection.sink)
    text = [
        f"{d.sink:<14}{d.record_id:>10}  {d.device_id:<14}{d.stream:<16}"
        f"{iso_utc(d.t0_s)}  attempts {d.attempts}: {d.error}"
        for d in letters
    ]
    _lines(letters, as_json, text, "no dead letters")


def _stats(path: Path, selection: Selection, *, as_json: bool) -> None:
    report = inspect.report(path, participant=selection.participant, session=selection.session)
    if as_json:
        backfill = [dataclasses.asdict(d) for d in inspect.backfill(path)]
        print(json.dumps({**dataclasses.asdict(report), "backfill": backfill}))
        return
    chosen = (("participant", selection.participant), ("session", selection.session))
    selected = "".join(f", {name} {value}" for name, value in chosen if value is not None)
    print(f"outbox {path}: {report.rows} rows{selected}")
    print(f"{'sink':<16}{'backlog':>10}{'bytes':>12}{'oldest':>10}{'dead':>8}")
    for s in report.sinks:
        if selection.sink and s.sink != selection.sink:
            continue
        age = f"{s.oldest_age_s:.0f} s" if s.oldest_age_s is not None else "-"
        print(f"{s.sink:<16}{s.pending_rows:>10}{s.pending_bytes:>12}{age:>10}{s.dead_letters:>8}")
    evicted = ", ".join(f"{k} {v}" for k, v in sorted(report.evicted.items())) or "none"
    print(f"evicted: {evicted}")
    if report.corrupt_recoveries:
        print(f"recovered from a corrupt file {report.corrupt_recoveries} time(s)")
    _backfill(path)


def _backfill(path: Path) -> None:
    """Per device: what was fetched from its memory, and the gaps no record filled."""
    devices = inspect.backfill(path)
    if not devices:
        return
    print(f"{'device':<16}{'backfilled':>11}{'gaps filled':>13}{'gaps open':>11}{'open for':>11}")
    for d in devices:
        print(
            f"{d.device_id:<16}{d.backfilled:>11}{d.gaps_filled:>13}{len(d.open_gaps):>11}"
            f"{_duration(d.open_s):>11}"
        )
        for gap in d.open_gaps[-3:]:  # the newest: what a person would go and look at
            print(
                f"  open: {gap.stream} {iso_utc(gap.t0_s)} - {iso_utc(gap.t1_s)}"
                f" ({_duration(gap.t1_s - gap.t0_s)}, {gap.reason})"
            )


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
