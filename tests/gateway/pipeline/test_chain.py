"""The signal chain on the simulator's signals: heart rate, quality gate, gaps, `wgw process`."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING

import numpy as np
import pytest

from drivers.sim.signals import HeartModel
from gateway.pipeline.chain import ChainSettings, SignalChain, Window
from gateway.pipeline.grid import UniformGrid
from gateway.pipeline.quality import passes

if TYPE_CHECKING:
    from pathlib import Path

    from numpy.typing import NDArray


def simulated(
    kind: str, rate: int, seconds: float, heart: HeartModel
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    t = np.arange(0, seconds, 1.0 / rate)
    if kind == "ppg":
        x = 30000.0 * heart.pulse_wave(t).reshape(-1, 1)
        return t, x + heart.noise(x.shape, 150.0)
    x = 1000.0 * heart.ecg_mv(t)
    return t, x + heart.noise(x.shape, 8.0)


def run(
    chain: SignalChain, t: NDArray[np.float64], x: NDArray[np.float64], chunk: int = 37
) -> list[Window]:
    windows: list[Window] = []
    for i in range(0, len(t), chunk):
        windows += chain.push(t[i : i + chunk], x[i : i + chunk])
    return windows + chain.finish()


@pytest.mark.parametrize(
    ("kind", "rate"), [("ppg", 25), ("ppg", 55), ("ppg", 135), ("ecg", 130), ("ecg", 500)]
)
def test_heart_rate_at_rest_within_2_bpm(kind: str, rate: int) -> None:
    """Test per-window HR against the simulator's ground truth (mean over the window)."""
    heart = HeartModel(seed=5)
    t, x = simulated(kind, rate, 62.0, heart)
    windows = run(SignalChain(kind, rate, 1), t, x)  # type: ignore[arg-type]
    assert len(windows) == 6
    for w in windows:
        truth = np.mean([heart.heart_rate_bpm(s) for s in np.arange(w.t0_s, w.t0_s + 10, 0.1)])
        assert w.heart_rate_bpm is not None
        assert abs(w.heart_rate_bpm - truth) < 2.0, (w.t0_s, w.heart_rate_bpm, truth)


@pytest.mark.parametrize(("kind", "rate"), [("ppg", 135), ("ecg", 130)])
def test_heart_rate_while_ramping_within_5_bpm(kind: str, rate: int) -> None:
    """Test a 60 -> 120 -> 60 bpm swing over two minutes (exercise onset and recovery)."""
    heart = HeartModel(seed=2)
    heart.resting_bpm, heart.swing_bpm, heart.period_s = 90.0, 30.0, 120.0
    t, x = simulated(kind, rate, 122.0, heart)
    windows = run(SignalChain(kind, rate, 1), t, x)  # type: ignore[arg-type]
    for w in windows:
        truth = np.mean([heart.heart_rate_bpm(s) for s in np.arange(w.t0_s, w.t0_s + 10, 0.1)])
        assert w.heart_rate_bpm is not None
        assert abs(w.heart_rate_bpm - truth) < 5.0, (w.t0_s, w.heart_rate_bpm, truth)


def with_artefact(
    x: NDArray[np.float64], t: NDArray[np.float64], rng: np.random.Generator
) -> NDArray[np.float64]:
    """Motion: large random low-frequency swings and spikes, plus broadband noise."""
    scale = float(np.ptp(x))
    motion = sum(
        rng.uniform(0.5, 2.0)
        * scale
        * np.sin(2 * np.pi * rng.uniform(0.6, 3.0) * t + rng.uniform(0, 6))
        for _ in range(3)
    )
    spikes = np.zeros_like(t)
    spikes[rng.integers(0, len(t), 30)] = rng.normal(0, 3 * scale, 30)
    return x + (motion + spikes + rng.normal(0, 0.8 * scale, len(t))).reshape(-1, 1)


@pytest.mark.parametrize(("kind", "rate"), [("ppg", 135), ("ecg", 130)])
def test_quality_gate_separates_clean_from_artefact(kind: str, rate: int) -> None:
    """Test the gate: every clean window passes; at least 90 % of corrupted windows fail."""
    rng = np.random.default_rng(1)
    clean_pass = bad_fail = total = 0
    for seed in range(4):
        heart = HeartModel(seed=seed)
        t, x = simulated(kind, rate, 62.0, heart)
        clean = run(SignalChain(kind, rate, 1), t, x)  # type: ignore[arg-type]
        bad = run(SignalChain(kind, rate, 1), t, with_artefact(x, t, rng))  # type: ignore[arg-type]
        clean_pass += sum(passes(kind, w.sqi) for w in clean)  # type: ignore[arg-type]
        bad_fail += sum(not passes(kind, w.sqi) for w in bad)  # type: ignore[arg-type]
        total += len(clean)
    assert clean_pass == total
    assert bad_fail >= 0.9 * total


def test_nothing_is_computed_across_a_gap() -> None:
    """Test that a 3 s hole starts a new segment: no grid point and no window spans it."""
    heart = HeartModel(seed=1)
    t, x = simulated("ppg", 55, 60.0, heart)
    hole = (t > 25.0) & (t < 28.0)
    t, x = t[~hole], x[~hole]
    grid = UniformGrid(55.0, 1, max_gap_s=1.0)
    points = np.concatenate([c.t0_s + np.arange(len(c.samples)) / 55.0 for c in grid.push(t, x)])
    assert not ((points > 25.0 + 1 / 55) & (points < 28.0)).any()
    chain = SignalChain("ppg", 55, 1, ChainSettings(0.5, 8.0, window_s=5.0))
    windows = run(chain, t, x)
    assert chain.segments == 2
    assert windows
    for w in windows:
        assert w.t0_s + 5.0 <= 25.0 + 1e-6 or w.t0_s >= 28.0
    # the second segment's windows start after the filter has settled again
    assert min(w.t0_s for w in windows if w.t0_s >= 28.0) >= 28.0 + 2.0 - 0.1


def test_jittered_timestamps_give_the_same_heart_rate() -> None:
    """Test irregular input (BLE delivery jitter) put on the grid first."""
    heart = HeartModel(seed=4)
    t, x = simulated("ppg", 55, 32.0, heart)
    jittered = t + np.random.default_rng(0).uniform(-0.004, 0.004, len(t))
    windows = run(SignalChain("ppg", 55, 1), np.sort(jittered), x)
    truth = np.mean([heart.heart_rate_bpm(s) for s in np.arange(2, 12, 0.1)])
    assert windows[0].heart_rate_bpm is not None
    assert abs(windows[0].heart_rate_bpm - truth) < 2.0


def test_wgw_process_csv(tmp_path: Path) -> None:
    """Test the offline command: a two-column CSV in, filtered 500 Hz CSV out, JSON per window."""
    heart = HeartModel(seed=6)
    t, x = simulated("ppg", 55, 32.0, heart)
    src = tmp_path / "ppg.csv"
    np.savetxt(src, np.column_stack([t, x[:, 0]]), delimiter=",", header="time_s,value")
    out = tmp_path / "out.csv"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway",
            "process",
            str(src),
            "--kind",
            "ppg",
            "--rate",
            "55",
            "--resample",
            "500",
            "--out",
            str(out),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    windows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [w["t0_s"] for w in windows] == pytest.approx([2.0, 12.0, 22.0], abs=0.02)
    for w in windows:
        truth = np.mean(
            [heart.heart_rate_bpm(s) for s in np.arange(w["t0_s"], w["t0_s"] + 10, 0.1)]
        )
        assert abs(w["heart_rate_bpm"] - truth) < 2.0
        assert w["sqi"] > 0.2
    written = np.loadtxt(out, delimiter=",", skiprows=1)
    assert written.shape[1] == 2
    assert np.median(np.diff(written[:, 0])) == pytest.approx(1 / 500, rel=1e-6)
