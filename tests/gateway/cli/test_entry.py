"""The command line's entry: one way to refuse config, the command's module imported alone."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from typing import TYPE_CHECKING

import pytest

from gateway.cli.entry import COMMANDS, main

if TYPE_CHECKING:
    from pathlib import Path


@pytest.mark.parametrize("command", [c for c in COMMANDS if c.reads_config])
def test_every_command_that_reads_config_refuses_a_bad_one_with_78(
    command: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Test each command with a config whose field is refused: exit 78, the field named."""
    config = tmp_path / "config.yaml"
    config.write_text("storage:\n  path: 17\n  bogus: 1\n")
    needed = {
        "session": ["start", "--participant", "p1"],
        "mark": ["text"],
        "assign": ["--device", "d"],
        "process": ["in.csv", "--kind", "ppg", "--rate", "50", "--out", "o.csv"],
        "ecg": ["--from-ppg", "in.csv", "--rate", "50", "--out", "o"],
        "export": ["--device", "d", "--out", "o"],
        "plot": ["--device", "d", "--out", "o.png"],
        "diffusets": ["--text", "t", "--age", "1", "--sex", "M", "--hr", "60", "--out", "o"],
        "diagnose": ["--symptoms", "s"],
    }
    name = command.name  # type: ignore[attr-defined]
    assert main([name, *needed.get(name, []), "--config", str(config)]) == 78
    err = capsys.readouterr().err
    assert "config error: storage.bogus: unknown field" in err


def test_a_missing_config_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Test a config file that is not there: its path and why, exit 78."""
    assert main(["queue", "--config", str(tmp_path / "none.yaml")]) == 78
    assert (
        capsys.readouterr()
        .err.strip()
        .endswith("none.yaml: cannot read: No such file or directory")
    )


def test_a_bad_time_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """Test ``--from`` that is neither ISO 8601 nor epoch seconds: argparse's exit 2."""
    with pytest.raises(SystemExit) as exited:
        main(["export", "--device", "d", "--out", "o", "--from", "yesterday"])
    assert exited.value.code == 2
    assert "'yesterday' is neither ISO 8601 nor epoch s" in capsys.readouterr().err


def test_help_and_a_light_command_leave_the_daemon_unloaded() -> None:
    """Test a fresh interpreter: parsing ``wgw decode`` imports neither the daemon nor aiohttp."""
    probe = (
        "import sys; from gateway.cli.entry import main;"
        "main(['decode', '2a37', '0648']);"
        "print('gateway.daemon' in sys.modules, 'aiohttp' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    decoded, loaded = out.stdout.strip().splitlines()
    assert '"heart_rate_bpm": 72' in decoded
    assert loaded == "False False"


def test_version_is_the_installed_packages(capsys: pytest.CaptureFixture[str]) -> None:
    """Test ``wgw --version``: the version pip installed (pyproject's), exit 0."""
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"wgw {version('wearable-gateway')}"
