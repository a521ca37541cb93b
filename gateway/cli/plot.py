"""``wgw plot``: draw a stored 12-lead conversion result as a clinical ECG sheet (PNG or PDF)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from buffers import inspect
from buffers.records import OutboxRecord
from gateway import codec
from gateway.cli.common import load, moment

if TYPE_CHECKING:
    import argparse


def arguments(parser: argparse.ArgumentParser) -> None:
    """The device, ``--at``, the sheet to write."""
    parser.add_argument("--device", required=True, help="device id")
    parser.add_argument("--at", type=moment, help="the result at or before this time (ISO 8601)")
    parser.add_argument("--out", type=Path, required=True, help="the sheet: .png or .pdf")


def run(args: argparse.Namespace) -> int:
    """Write the sheet; 1 with a line on stderr if nothing to draw or no matplotlib (export)."""
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
    try:
        from gateway import ecg_sheet  # noqa: PLC0415 - matplotlib, only to draw
    except ImportError:  # pragma: no cover - the test venv has the export extra
        print(
            "error: wgw plot needs matplotlib: pip install 'wearable-gateway[export]'",
            file=sys.stderr,
        )
        return 1
    header = ecg_sheet.Header(device_id, codec.iso_utc(row.t0_s), "12 leads by HeartVoice")
    ecg_sheet.draw(leads.tolist(), row.sample_rate_hz, header, out)
    print(f"{out}: {device_id}, 12 leads from {codec.iso_utc(row.t0_s)}")
    return 0
