"""``wgw emulator``'s settings: a flag over its ``WGW_EMULATOR_*`` variable over the default."""

from __future__ import annotations

import argparse

import pytest

from gateway.cli import emulator
from gateway.errors import ConfigError


def _parsed(*words: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    emulator.arguments(parser)
    return parser.parse_args(words)


def test_a_flag_wins_over_its_variable_which_wins_over_the_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Test plan from the flag, port and faults from variables, the rest defaults."""
    monkeypatch.setenv("WGW_EMULATOR_PLAN", "basic")
    monkeypatch.setenv("WGW_EMULATOR_PORT", "9090")
    monkeypatch.setenv("WGW_EMULATOR_FAULTS", '{"latency_s": 0.5}')
    settings = emulator.settings_of(_parsed("--plan", "pro"))
    assert (settings.plan, settings.port, settings.faults) == ("pro", 9090, {"latency_s": 0.5})
    assert (settings.host, settings.email) == ("127.0.0.1", "demo@example.com")


def test_a_refused_value_names_the_flag_or_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Test one problem per refused value, each naming where it came from."""
    monkeypatch.setenv("WGW_EMULATOR_PLAN", "gold")
    with pytest.raises(ConfigError) as refused:
        emulator.settings_of(_parsed("--token-ttl-s", "-1"))
    assert sorted(p.split(":")[0] for p in refused.value.problems) == [
        "--token-ttl-s",
        "WGW_EMULATOR_PLAN",
    ]


def test_faults_must_be_a_json_object() -> None:
    """Test ``--faults`` that is JSON but not an object: a usage error."""
    with pytest.raises(SystemExit):
        _parsed("--faults", "[1, 2]")
