"""``wgw export``: one device's stored data as CSV, WFDB or EDF+, with the markers.

A time range, a participant or a session select; a progress bar on stderr, the files on stdout.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import Progress

from buffers import inspect
from buffers.inspect import Selected
from gateway.cli.common import load, moment
from gateway.export import writers
from gateway.export.segments import segments

if TYPE_CHECKING:
    import argparse


_WRITERS = {"wfdb": "wfdb", "edf": "pyedflib"}  # format -> the library it needs


def arguments(parser: argparse.ArgumentParser) -> None:
    """The device, what to select, the format, the output folder."""
    parser.add_argument("--device", required=True)
    parser.add_argument("--from", dest="from_time", type=moment, help="ISO 8601 or epoch s")
    parser.add_argument("--to", dest="to_time", type=moment, help="ISO 8601 or epoch s")
    parser.add_argument("--participant", default=None)
    parser.add_argument("--session", type=int, default=None)
    parser.add_argument("--format", choices=("csv", "wfdb", "edf"), default="csv")
    parser.add_argument("--out", type=Path, required=True, help="folder for the files")


def run(args: argparse.Namespace) -> int:
    """Write the files, one path a line; 1 when there is nothing to write."""
    start = float("-inf") if args.from_time is None else args.from_time
    end = float("inf") if args.to_time is None else args.to_time
    selection = Selected(args.device, start, end, args.participant, args.session)
    return run_export(load(args).storage.path, selection, args.format, args.out)


def run_export(db: Path, sel: Selected, fmt: str, out: Path) -> int:
    """Write the files; 1 with one line on stderr when there is nothing to write.

    Also 1 when the format's library is not installed (the ``export`` extra).
    """
    library = _WRITERS.get(fmt)
    if library is not None and importlib.util.find_spec(library) is None:
        print(
            f"error: --format {fmt} needs {library}: pip install 'wearable-gateway[export]'",
            file=sys.stderr,
        )
        return 1
    try:
        records = inspect.selected_records(db, sel)
        markers = inspect.selected_markers(db, sel)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    segs = segments(records)
    vitals = [r for r in records if r.kind == "vital"]
    if not segs and not (fmt == "csv" and vitals):
        print(f"error: no stored data for {sel.device_id!r} in that selection", file=sys.stderr)
        return 1
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(f"export {fmt}", total=len(segs) or 1)
        if fmt == "csv":
            written += writers.write_csv(out, sel.device_id, segs, vitals, markers)
        else:
            write = writers.write_wfdb if fmt == "wfdb" else writers.write_edf
            for seg in segs:
                written += write(out, sel.device_id, [seg], markers)
                bar.advance(task)
    for path in written:
        print(path)
    return 0
