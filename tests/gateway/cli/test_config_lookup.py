"""Which config file a command reads: `--config`, `WGW_CONFIG`, the system's, ./config.yaml."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING

import pytest

from buffers.outbox import Outbox
from buffers.records import OutboxRecord
from gateway.cli.common import config_path
from gateway.cli.entry import main
from gateway.errors import ConfigError

if TYPE_CHECKING:
    from pathlib import Path


def test_the_first_place_given_or_found_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Test each step of the order: the flag over the variable, the variable over the files,
    the system file over the working folder's, and the working folder's when alone.
    """
    monkeypatch.chdir(tmp_path)
    system = tmp_path / "etc" / "config.yaml"
    system.parent.mkdir()
    flag, named = tmp_path / "flag.yaml", tmp_path / "named.yaml"
    env = {"WGW_CONFIG": str(named)}
    assert config_path(flag, env, system) == flag
    assert config_path(None, env, system) == named  # taken as given, even if missing
    (tmp_path / "config.yaml").write_text("{}\n")
    assert config_path(None, {}, system).resolve() == (tmp_path / "config.yaml")
    system.write_text("{}\n")
    assert config_path(None, {}, system) == system
    assert config_path(None, {"WGW_CONFIG": ""}, system) == system  # empty: not set


def test_no_config_anywhere_names_every_place_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Test the error when nothing is given and nothing exists: all four places in it."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as caught:
        config_path(None, {}, tmp_path / "etc.yaml")
    (problem,) = caught.value.problems
    for place in ("--config", "$WGW_CONFIG", str(tmp_path / "etc.yaml"), str(tmp_path)):
        assert place in problem


def test_a_command_run_from_another_folder_reads_wgw_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Test ``wgw queue --json`` with no ``--config``, run elsewhere: the file ``WGW_CONFIG``
    names is read (its outbox reported), and the variable is not taken for a settings field.
    """
    config = tmp_path / "deployed.yaml"
    db = tmp_path / "wgw.sqlite"
    asyncio.run(an_outbox(db))
    config.write_text(f"storage: {{path: '{db}'}}\ncloud: {{tcm: {{api_key: k}}}}\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("WGW_CONFIG", str(config))
    assert main(["queue", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == 1


async def an_outbox(db: Path) -> None:
    async with Outbox(db, {"mqtt": lambda r: True}) as outbox:
        await outbox.put(OutboxRecord("vital", "w1", "heart_rate", 0, 1.8e9, b"{}"))
