"""`wgw ecg --from-ppg`: a PPG recording through the chain and the HeartVoice emulator."""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING

import numpy as np
import yaml

from drivers.sim.signals import HeartModel

if TYPE_CHECKING:
    from pathlib import Path

    from aiohttp.test_utils import TestServer


async def test_twelve_lead_conversion_of_a_recording(tmp_path: Path, emulator: TestServer) -> None:
    """Test three 10 s windows at 500 Hz, each one CSV of 12 leads, one motion window skipped."""
    heart = HeartModel(seed=2)
    t = np.arange(0, 42, 1 / 55)
    ppg = 30000.0 * heart.pulse_wave(t) + heart.noise(t.shape, 150.0)
    motion = (t >= 32) & (t < 42)  # the last window: a hand waving
    rng = np.random.default_rng(0)
    ppg[motion] += 60000.0 * np.sin(2 * np.pi * 1.3 * t[motion]) + rng.normal(
        0, 30000, motion.sum()
    )
    source = tmp_path / "ppg.csv"
    np.savetxt(source, ppg)
    config = tmp_path / "c.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "cloud": {
                    "tcm": {"api_key": "k"},
                    "heartvoice": {
                        "base_url": str(emulator.make_url("")).rstrip("/"),
                        "api_key": "heartvoice-demo-key",
                    },
                }
            }
        )
    )
    out = tmp_path / "ecg"
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "ecg",
        "--from-ppg",
        str(source),
        "--rate",
        "55",
        "--twelve-lead",
        "--out",
        str(out),
        "--config",
        str(config),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(child.communicate(), 60)
    assert child.returncode == 0, stderr.decode()
    files = sorted(out.glob("ecg_*.csv"), key=lambda f: float(f.stem[4:]))
    assert [f.name for f in files] == ["ecg_2.000.csv", "ecg_12.000.csv", "ecg_22.000.csv"]
    for f in files:
        table = np.loadtxt(f, delimiter=",", skiprows=1)
        assert table.shape == (5000, 13)
        assert np.allclose(table[:, 3], table[:, 2] - table[:, 1], atol=1e-3)  # III = II - I
    assert "3 windows converted, 1 below the quality gate" in stdout.decode()


async def test_wgw_diffusets_writes_pngs(tmp_path: Path, emulator: TestServer) -> None:
    """Test the command: one PNG file per image, named in order."""
    config = tmp_path / "c.yaml"
    hv = {"base_url": str(emulator.make_url("")).rstrip("/"), "api_key": "heartvoice-demo-key"}
    config.write_text(yaml.safe_dump({"cloud": {"tcm": {"api_key": "k"}, "heartvoice": hv}}))
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "diffusets",
        "--text",
        "sinus bradycardia",
        "--age",
        "70",
        "--sex",
        "M",
        "--hr",
        "48",
        "--batch",
        "2",
        "--out",
        str(tmp_path / "img"),
        "--config",
        str(config),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(child.communicate(), 60)
    assert child.returncode == 0, stderr.decode()
    files = sorted((tmp_path / "img").glob("*.png"))
    assert [f.name for f in files] == ["diffusets_1.png", "diffusets_2.png"]
    assert all(f.read_bytes().startswith(b"\x89PNG") for f in files)
