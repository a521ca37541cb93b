"""``wgw plot``: draw a stored 12-lead conversion result as a clinical ECG sheet (PNG)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from buffers import inspect
from buffers.records import OutboxRecord
from gateway import codec, ecg_image

if TYPE_CHECKING:
    from pathlib import Path


def parse_time(text: str) -> float:
    """Epoch seconds, or ISO 8601 (``Z`` or an offset; naive times are taken as UTC).

    Raises:
        ValueError: Neither.
    """
    try:
        return float(text)
    except ValueError:
        pass
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def run_plot(db: Path, device_id: str, at: str | None, out: Path) -> int:
    """Write the PNG; 1 with one line on stderr when there is nothing to draw."""
    try:
        at_s = parse_time(at) if at is not None else None
    except ValueError:
        print(f"error: --at {at!r} is neither epoch seconds nor ISO 8601", file=sys.stderr)
        return 1
    try:
        row = inspect.waveform_at(db, device_id, codec.ECG_12, at_s)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if row is None:
        when = f" at or before {at}" if at else ""
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
    out.write_bytes(ecg_image.render(leads.tolist(), row.sample_rate_hz))
    print(f"{out}: {device_id}, 12 leads from {codec.iso_utc(row.t0_s)}")
    return 0
