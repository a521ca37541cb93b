"""The export formats: CSV (everything), WFDB and EDF+/BDF+ (segments, markers annotated).

WFDB through the ``wfdb`` package (PhysioNet's own), EDF+ through ``pyedflib`` (EDFlib). EDF
stores 16-bit samples; a segment whose values do not fit (a 22-bit PPG) is written as BDF+
(24-bit) instead, so nothing is rounded. Values are the devices' own units (ADC counts).
"""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

import numpy as np

from gateway import codec

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from buffers.records import OutboxRecord
    from gateway.export.segments import Segment

_INT16: Final = (-32768, 32767)
_INT24: Final = (-8388608, 8388607)


def stem(device_id: str, segment: Segment) -> str:
    """A file name base for one segment: device, stream, start (UTC, no separators)."""
    start = datetime.fromtimestamp(segment.t0_s, UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return f"{device_id}_{segment.stream}_{start}"


def _within(markers: Sequence[tuple[float, str]], seg: Segment) -> list[tuple[float, str]]:
    return [(t, text) for t, text in markers if seg.t0_s <= t < seg.end_s]


def write_csv(
    out: Path,
    device_id: str,
    segs: Sequence[Segment],
    vitals: Sequence[OutboxRecord],
    markers: Sequence[tuple[float, str]],
) -> list[Path]:
    """One CSV per segment (``time_s`` and a column per channel), the vitals, the markers."""
    written = []
    for seg in segs:
        path = out / f"{stem(device_id, seg)}.csv"
        samples = seg.samples
        times = seg.t0_s + np.arange(len(samples)) / seg.rate_hz
        with path.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["time_s", *(f"{seg.stream}{i}" for i in range(samples.shape[1]))])
            w.writerows([f"{t:.6f}", *row] for t, row in zip(times, samples.tolist(), strict=True))
        written.append(path)
    if vitals:
        path = out / f"{device_id}_vitals.csv"
        with path.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["time", "kind", "participant_id", "session_id", "backfilled", "values"])
            for r in vitals:
                values = json.dumps(codec.vital_values(r), separators=(",", ":"))
                w.writerow(
                    [
                        codec.iso_utc(r.t0_s),
                        r.stream,
                        r.participant_id,
                        r.session_id,
                        int(r.backfilled),
                        values,
                    ]
                )
        written.append(path)
    if markers:
        path = out / f"{device_id}_markers.csv"
        with path.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["time", "text"])
            w.writerows([codec.iso_utc(t), text] for t, text in markers)
        written.append(path)
    return written


def write_wfdb(
    out: Path, device_id: str, segs: Sequence[Segment], markers: Sequence[tuple[float, str]]
) -> list[Path]:
    """A WFDB record per segment (format 32, gain 1: the samples exactly).

    Markers inside a segment go to its annotation file (``.atr``): ``"`` notes with the text.
    """
    import wfdb  # noqa: PLC0415 - heavy (pandas, matplotlib); only the export needs it

    written = []
    for seg in segs:
        name = stem(device_id, seg)
        samples = seg.samples
        channels = samples.shape[1]
        wfdb.wrsamp(
            name,
            fs=seg.rate_hz,
            units=["adu"] * channels,
            sig_name=[f"{seg.stream}{i}" for i in range(channels)],
            d_signal=samples.astype(np.int64),
            fmt=["32"] * channels,
            adc_gain=[1.0] * channels,
            baseline=[0] * channels,
            base_datetime=datetime.fromtimestamp(seg.t0_s, UTC).replace(tzinfo=None),
            write_dir=str(out),
        )
        written.append(out / f"{name}.hea")
        inside = _within(markers, seg)
        if inside:
            wfdb.wrann(
                name,
                "atr",
                np.array([round((t - seg.t0_s) * seg.rate_hz) for t, _ in inside]),
                symbol=['"'] * len(inside),
                aux_note=[text for _, text in inside],
                fs=seg.rate_hz,
                write_dir=str(out),
            )
            written.append(out / f"{name}.atr")
    return written


def write_edf(
    out: Path, device_id: str, segs: Sequence[Segment], markers: Sequence[tuple[float, str]]
) -> list[Path]:
    """An EDF+ file per segment (BDF+ when the samples need more than 16 bits).

    Markers become annotations. EDF data records are whole seconds: the last one is padded
    with the segment's last value.
    """
    import pyedflib  # noqa: PLC0415

    written = []
    for seg in segs:
        samples = seg.samples.astype(np.int32)
        rate = round(seg.rate_hz)
        lo, hi = int(samples.min(initial=0)), int(samples.max(initial=0))
        wide = lo < _INT16[0] or hi > _INT16[1]
        digital = _INT24 if wide else _INT16
        suffix, kind = (
            (".bdf", pyedflib.FILETYPE_BDFPLUS) if wide else (".edf", pyedflib.FILETYPE_EDFPLUS)
        )
        path = out / f"{stem(device_id, seg)}{suffix}"
        pad = (-len(samples)) % rate
        if pad:
            samples = np.vstack([samples, np.repeat(samples[-1:], pad, axis=0)])
        writer = pyedflib.EdfWriter(str(path), samples.shape[1], file_type=kind)
        try:
            writer.setSignalHeaders(
                [
                    {
                        "label": f"{seg.stream}{i}",
                        "dimension": "adu",
                        "sample_frequency": rate,
                        "physical_min": digital[0],
                        "physical_max": digital[1],
                        "digital_min": digital[0],
                        "digital_max": digital[1],
                    }
                    for i in range(samples.shape[1])
                ]
            )
            writer.setStartdatetime(datetime.fromtimestamp(seg.t0_s, UTC).replace(tzinfo=None))
            writer.writeSamples(
                [np.ascontiguousarray(samples[:, i]) for i in range(samples.shape[1])],
                digital=True,
            )
            for t, text in _within(markers, seg):
                writer.writeAnnotation(t - seg.t0_s, -1, text)
        finally:
            writer.close()
        written.append(path)
    return written
