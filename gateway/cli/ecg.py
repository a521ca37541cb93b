"""``wgw ecg --from-ppg``: a PPG recording through the gateway's chain and the HeartVoice API.

Windows that pass the quality gate are band-passed, resampled to the API rate and converted to
one ECG lead (and, with ``--twelve-lead``, to 12 leads); each result is a CSV in ``--out``.
Windows that fail the gate are skipped and counted: quota is precious.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp
import numpy as np

from gateway.cli.common import load
from gateway.clients.heartvoice import HeartVoiceClient
from gateway.errors import SinkError
from gateway.pipeline import quality
from gateway.pipeline.chain import ChainSettings, SignalChain
from gateway.retry import retrying

if TYPE_CHECKING:
    import argparse

    from gateway.config import Settings

LEADS = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")


def arguments(parser: argparse.ArgumentParser) -> None:
    """The recording and its rate, ``--twelve-lead``, the output folder."""
    parser.add_argument("--from-ppg", type=Path, required=True, dest="source", help="CSV")
    parser.add_argument("--rate", type=int, required=True, help="the recording's rate (Hz)")
    parser.add_argument("--twelve-lead", action="store_true", help="also MCMA 12 leads")
    parser.add_argument("--out", type=Path, required=True, help="folder for one CSV per window")


def run(args: argparse.Namespace) -> int:
    """Convert; one line per window; 1 on unreadable input or a failed call."""
    return asyncio.run(_ecg(load(args), args.source, args.rate, args.out, twelve=args.twelve_lead))


async def _ecg(settings: Settings, source: Path, rate_hz: int, out: Path, *, twelve: bool) -> int:
    try:
        table = np.loadtxt(source, delimiter=",", comments="#", ndmin=2)
    except (OSError, ValueError) as exc:
        print(f"error: cannot read {source}: {exc}", file=sys.stderr)
        return 1
    times, values = (
        (np.arange(len(table)) / rate_hz, table[:, :1])
        if table.shape[1] == 1
        else (table[:, 0], table[:, 1:2])
    )
    dsp = settings.dsp
    chain = SignalChain("ppg", rate_hz, 1, ChainSettings.from_config("ppg", dsp))
    windows = [*chain.push(times, values), *chain.finish()]
    await asyncio.to_thread(out.mkdir, parents=True, exist_ok=True)
    skipped = 0
    async with aiohttp.ClientSession() as session:
        client = HeartVoiceClient(session, settings.cloud.heartvoice)
        for w in windows:
            if not quality.passes("ppg", w.sqi, dsp.sqi_min_ppg):
                skipped += 1
                print(f"t0 {w.t0_s:9.2f} s: SQI {w.sqi:.2f} below the gate, not sent")
                continue
            try:
                leads = await _convert(client, w.samples[:, 0].tolist(), w.rate_hz, twelve=twelve)
            except SinkError as exc:
                print(f"error: {exc} (code {exc.code})", file=sys.stderr)
                return 1
            t = w.t0_s + np.arange(len(leads[0])) / w.rate_hz
            names = LEADS if twelve else ("ECG",)
            path = out / f"ecg_{w.t0_s:.3f}.csv"
            table_out = np.column_stack([t, *leads])
            header = "time_s," + ",".join(names)
            np.savetxt(path, table_out, delimiter=",", fmt="%.6f", header=header, comments="")
            hr = w.heart_rate_bpm or 0.0
            print(f"t0 {w.t0_s:9.2f} s: SQI {w.sqi:.2f}, HR {hr:.0f} bpm -> {path.name}")
    print(f"{len(windows) - skipped} windows converted, {skipped} below the quality gate")
    return 0


async def _convert(
    client: HeartVoiceClient, ppg: list[float], rate_hz: float, *, twelve: bool
) -> list[list[float]]:
    ecg = await retrying(lambda: client.ppg_to_ecg(ppg, rate_hz))
    if not twelve:
        return [ecg]
    return await retrying(lambda: client.twelve_leads(ecg, rate_hz))
