"""``wgw plot``: draw a stored 12-lead conversion result as a clinical ECG sheet (PNG)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from buffers import inspect
from buffers.records import OutboxRecord
from gateway import codec, ecg_image
from gateway.cli.common import load, moment

if TYPE_CHECKING:
    import argparse


def arguments(parser: argparse.ArgumentParser) -> None:
    """The device, ``--at``, the PNG to write."""
    parser.add_argument("--device", required=True, help="device id")
    parser.add_argument("--at", type=moment, help="the result at or before this time (ISO 8601)")
    parser.add_argument("--out", type=Path, required=True, help="the PNG to write")


def run(args: argparse.Namespace) -> int:
    """Write the PNG; 1 with one line on stderr when there is nothing to draw."""
    return _plot(load(args).storage.path, args.device, args.at, args.out)


def _plot(db: Path, device_id: str, at_s: float | None, out: Path) -> int:
    try:
        row = inspect.waveform_at(db, device_id, codec.ECG_12, at_s)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if row is None:
        when = "" if at_s is None else f" at or before {codec.iso_utc(at_s)}"
        print(f"error: no 12-lead result for {device_id!r}{when}", file=sys.stderr)
        return 1
    record = OutboxRecord(
        "waveform",
        device_id,
        codec.ECG_12,
        0,
        row.t0_s,
        row.payload,
        sample_rate_hz=row.sample_rate_hz,
        dtype=row.dtype,
        shape=row.shape,
        encoding=row.encoding,
    )
    leads = codec.converted_leads(record)
    out.write_bytes(ecg_image.draw_sheet(leads.tolist(), row.sample_rate_hz))
    print(f"{out}: {device_id}, 12 leads from {codec.iso_utc(row.t0_s)}")
    return 0
