"""``wgw process``: the gateway's signal chain applied offline to a recording (CSV).

Input: one column of samples at ``--rate``, or two columns ``time_s,value`` with irregular
times. Output: the filtered (and resampled) signal as ``time_s,value``; per window, heart rate
and SQI on stdout (``--json``: one object per window).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gateway.cli.common import load
from gateway.config import DspConfig
from gateway.pipeline import quality
from gateway.pipeline.chain import ChainSettings, SignalChain

if TYPE_CHECKING:
    import argparse

    from gateway.pipeline.quality import Kind

_CHUNK = 64  # fed as a device would, in notifications, so the streaming path is the one used


def arguments(parser: argparse.ArgumentParser) -> None:
    """The recording, its kind and rate, the output; ``--config`` only for its dsp section."""
    parser.add_argument("source", type=Path, help="CSV: samples, or time_s,value")
    parser.add_argument("--kind", choices=("ppg", "ecg"), required=True)
    parser.add_argument("--rate", type=int, required=True, help="nominal sample rate (Hz)")
    parser.add_argument("--resample", type=int, default=None, help="output rate (Hz)")
    parser.add_argument("--out", type=Path, required=True, help="filtered signal (CSV)")
    parser.add_argument("--json", action="store_true", help="one JSON object per window")
    parser.set_defaults(config=None)  # the defaults serve without a config file


def run(args: argparse.Namespace) -> int:
    """Process the recording; 1 when it cannot be read."""
    dsp = DspConfig() if args.config is None else load(args).dsp
    return _process(
        args.source, args.kind, args.rate, args.resample, args.out, dsp=dsp, as_json=args.json
    )


def _process(
    source: Path,
    kind: Kind,
    rate_hz: int,
    resample_hz: int | None,
    out: Path,
    *,
    dsp: DspConfig,
    as_json: bool,
) -> int:
    """Process ``source``; return the exit status (1: unreadable input)."""
    try:
        table = np.atleast_2d(np.loadtxt(source, delimiter=",", comments="#", ndmin=2))
    except (OSError, ValueError) as exc:
        print(f"error: cannot read {source}: {exc}", file=sys.stderr)
        return 1
    if table.shape[1] == 1:
        times, values = np.arange(len(table)) / rate_hz, table[:, :1]
    else:
        times, values = table[:, 0], table[:, 1:2]
    settings = dataclasses.replace(
        ChainSettings.from_config(kind, dsp, resample=False), resample_hz=resample_hz
    )
    chain = SignalChain(kind, rate_hz, 1, settings)
    gate = dsp.sqi_min_ppg if kind == "ppg" else dsp.sqi_min_ecg
    windows = []
    for i in range(0, len(times), _CHUNK):
        windows += chain.push(times[i : i + _CHUNK], values[i : i + _CHUNK])
    windows += chain.finish()
    rows = []
    for w in windows:
        t = w.t0_s + np.arange(len(w.samples)) / w.rate_hz
        rows.append(np.column_stack([t, w.samples[:, 0]]))
        passed = quality.passes(kind, w.sqi, gate)
        hr = None if w.heart_rate_bpm is None else round(w.heart_rate_bpm, 2)
        if as_json:
            print(
                json.dumps(
                    {
                        "t0_s": round(w.t0_s, 6),
                        "heart_rate_bpm": hr,
                        "sqi": round(w.sqi, 4),
                        "passes_gate": passed,
                    }
                )
            )
        else:
            shown = "-" if hr is None else f"{hr:6.1f}"
            verdict = "pass" if passed else "fail"
            print(f"t0 {w.t0_s:10.2f} s  heart rate {shown} bpm  SQI {w.sqi:7.3f} ({verdict})")
    data = np.vstack(rows) if rows else np.zeros((0, 2))
    np.savetxt(out, data, delimiter=",", header="time_s,value", comments="", fmt="%.6f")
    return 0
