"""DSP benchmark (issue 5): the streaming chain against stateless per-chunk processing and
against neurokit2's cleaner applied to each 10 s window, fed notification by notification.

Usage: python bench/dsp.py [--minutes M]
Last line: {"bench": "dsp", "vs_stateless": x, "vs_neurokit2": x, "cpu_ms_per_signal_s_ppg135": x}
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from typing import TYPE_CHECKING

import numpy as np
from scipy import signal

from drivers.polar import pmd
from drivers.sim.devices import SimDevice, preset
from gateway.pipeline.chain import ChainSettings, SignalChain
from gateway.pipeline.filter import bandpass_sos

if TYPE_CHECKING:
    from collections.abc import Callable

    from numpy.typing import NDArray


def packets(model: str, minutes: float) -> tuple[list[bytes], pmd.PmdStreamSpec]:  # type: ignore[name-defined]
    """The device's notifications for ``minutes`` of signal, as it sends them."""
    device = SimDevice(preset(model, "5A:00:00:00:00:01", model, seed=3))  # type: ignore[arg-type]
    p = device.spec.pmd
    assert p is not None
    n = p.samples_per_packet
    out = []
    for k in range(int(minutes * 60 * p.sample_rate_hz) // n):
        t = (np.arange(k * n, (k + 1) * n) + 1.0) / p.sample_rate_hz
        frame = pmd.PmdFrame(
            p.measurement, pmd.COMPRESSED if p.compressed else 0, 0, device._pmd_samples(p, t)
        )
        out.append(pmd.encode_pmd_data(frame, resolution_bits=p.resolution_bits))
    return out, p


def decode(data: bytes, p: object) -> NDArray[np.float64]:
    frame = pmd.decode_pmd_data(data, channels=p.channels, resolution_bits=p.resolution_bits)  # type: ignore[attr-defined]
    return frame.samples.astype(np.float64)


def ours(data: list[bytes], p: object, kind: str) -> tuple[float, int]:
    rate = p.sample_rate_hz  # type: ignore[attr-defined]
    base = ChainSettings.defaults(kind)  # type: ignore[arg-type]
    chain = SignalChain(
        kind, rate, p.channels, ChainSettings(base.low_hz, base.high_hz, resample_hz=500)
    )  # type: ignore[arg-type, attr-defined]
    start = time.process_time()
    t0 = 0.0
    windows = 0
    for packet in data:
        samples = decode(packet, p)
        times = t0 + np.arange(len(samples)) / rate
        t0 += len(samples) / rate
        windows += len(chain.push(times, samples))
    return time.process_time() - start, windows


def stateless(data: list[bytes], p: object, kind: str) -> float:
    rate = p.sample_rate_hz  # type: ignore[attr-defined]
    base = ChainSettings.defaults(kind)  # type: ignore[arg-type]
    sos = bandpass_sos(rate, base.low_hz, base.high_hz)
    g = np.gcd(rate, 500)
    start = time.process_time()
    for packet in data:
        samples = decode(packet, p)
        filtered = signal.sosfiltfilt(
            sos, samples, axis=0, padlen=min(len(samples) - 1, 3 * (2 * len(sos) + 1))
        )
        signal.resample_poly(filtered, 500 // g, rate // g, axis=0)
    return time.process_time() - start


def neurokit(data: list[bytes], p: object, kind: str) -> float:
    import neurokit2 as nk  # noqa: PLC0415 - heavy; only this baseline needs it

    clean: Callable[..., object] = nk.ppg_clean if kind == "ppg" else nk.ecg_clean
    rate = p.sample_rate_hz  # type: ignore[attr-defined]
    window = 10 * rate
    buffer: list[NDArray[np.float64]] = []
    held = 0
    start = time.process_time()
    for packet in data:
        samples = decode(packet, p)
        buffer.append(samples)
        held += len(samples)
        if held >= window:
            block = np.vstack(buffer)
            for c in range(block.shape[1]):
                clean(block[:window, c], sampling_rate=rate)
            rest = block[window:]
            buffer, held = [rest], len(rest)
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=5.0, help="minutes of signal per device")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    rows = []
    figures: dict[str, float] = {}
    for model, kind in (("armband", "ppg"), ("strap", "ecg")):
        data, p = packets(model, args.minutes)
        seconds = args.minutes * 60
        samples = seconds * p.sample_rate_hz
        t_ours, windows = ours(data, p, kind)
        t_stateless = stateless(data, p, kind)
        t_nk = neurokit(data, p, kind)
        name = f"{kind} {p.sample_rate_hz} Hz x{p.channels}"
        rows.append(
            (
                name,
                samples / t_ours,
                samples / t_stateless,
                samples / t_nk,
                t_ours / seconds * 3600,
                t_ours / seconds * 1000,
                windows,
            )
        )
        figures[f"{kind}{p.sample_rate_hz}"] = t_ours / seconds * 1000
        figures[f"vs_stateless_{kind}"] = t_stateless / t_ours
        figures[f"vs_neurokit2_{kind}"] = t_nk / t_ours
    header = ("stream", "ours samp/s", "stateless", "neurokit2", "CPU s/dev-h", "CPU ms/s")
    print(f"{header[0]:<18}" + "".join(f"{h:>13}" for h in header[1:]))
    for name, ours_rate, st_rate, nk_rate, per_hour, per_s, _ in rows:
        rates = "".join(f"{r:>13,.0f}" for r in (ours_rate, st_rate, nk_rate))
        print(f"{name:<18}{rates}{per_hour:>13.2f}{per_s:>13.3f}")
    print(
        json.dumps(
            {
                "bench": "dsp",
                "vs_stateless": round(figures["vs_stateless_ppg"], 2),
                "vs_neurokit2": round(figures["vs_neurokit2_ppg"], 2),
                "cpu_ms_per_signal_s_ppg135": round(figures["ppg135"], 3),
                "vs_stateless_ecg130": round(figures["vs_stateless_ecg"], 2),
                "vs_neurokit2_ecg130": round(figures["vs_neurokit2_ecg"], 2),
                "cpu_ms_per_signal_s_ecg130": round(figures["ecg130"], 3),
            }
        )
    )


if __name__ == "__main__":
    main()
