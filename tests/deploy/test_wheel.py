"""The wheel ``make dist`` builds, installed as a user would: ``pipx install``, then ``wgw``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


@pytest.mark.timeout(600)
def test_pipx_installs_a_working_wgw_from_the_wheel(tmp_path: Path) -> None:
    """Test the wheel alone (no source tree near it): pipx gives a ``wgw`` that knows its
    version, decodes a packet and finds its config through ``WGW_CONFIG``."""
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = dist.glob("wearable_gateway-*.whl")
    env = {
        **os.environ,
        "PIPX_HOME": str(tmp_path / "pipx"),
        "PIPX_BIN_DIR": str(tmp_path / "bin"),
        "PIPX_MAN_DIR": str(tmp_path / "man"),
    }
    env.pop("VIRTUAL_ENV", None)
    done = subprocess.run(
        [sys.executable, "-m", "pipx", "install", str(wheel)],
        env=env,
        capture_output=True,
        text=True,
        timeout=500,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    wgw = tmp_path / "bin" / "wgw"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    def run(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(wgw), *args],
            env={**env, **extra},
            cwd=elsewhere,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    version = run("--version")
    assert version.returncode == 0 and version.stdout.startswith("wgw ")
    decoded = run("decode", "2a37", "0648")
    assert '"heart_rate_bpm": 72' in decoded.stdout
    config = tmp_path / "gateway.yaml"
    config.write_text("storage: {path: /nonexistent/wgw.sqlite}\ncloud: {tcm: {api_key: k}}\n")
    queue = run("queue", WGW_CONFIG=str(config))
    assert queue.returncode == 1  # it read that file: its outbox is the one missing
    assert "/nonexistent/wgw.sqlite" in queue.stderr
