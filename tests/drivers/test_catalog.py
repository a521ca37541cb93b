"""The decoder catalogue and `wgw decode`: names, UUIDs, JSON, errors, bulk stdin."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from drivers.catalog import CHARACTERISTICS, lookup


@pytest.mark.parametrize(
    "key",
    ["2a37", "0x2A37", "00002a37-0000-1000-8000-00805f9b34fb", "heart_rate_measurement", "2A37"],
)
def test_lookup_accepts_short_full_and_named(key: str) -> None:
    """Test that a characteristic is found by 16-bit UUID, full UUID or name."""
    found = lookup(key)
    assert found is not None
    assert found.name == "heart_rate_measurement"


def test_every_issue_name_is_there() -> None:
    """Test that each name `wgw decode` documents resolves."""
    for name in (
        "heart_rate_measurement",
        "plx_spot_check",
        "plx_continuous",
        "blood_pressure_measurement",
        "temperature_measurement",
        "battery_level",
        "pmd_data",
    ):
        assert name in CHARACTERISTICS
    assert lookup("not-a-thing") is None
    assert lookup("ffff") is None


def wgw(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", "decode", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_decode_prints_json_and_exits_0() -> None:
    """Test one payload decoded to one JSON line."""
    done = wgw("2a37", "164800040002")
    assert done.returncode == 0
    assert json.loads(done.stdout) == {
        "heart_rate_bpm": 72,
        "sensor_contact": "detected",
        "energy_expended_kj": None,
        "rr_intervals_ms": [1000.0, 500.0],
    }


def test_malformed_payload_prints_one_error_line_and_exits_1() -> None:
    """Test `error: <reason>` on stderr, nothing on stdout, exit 1."""
    done = wgw("heart_rate_measurement", "1148")
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        "error: heart_rate_measurement: truncated: uint16 heart rate announced"
    ]


def test_compressed_pmd_needs_and_uses_settings() -> None:
    """Test that a delta frame decodes with --channels/--resolution and is refused without."""
    frame = "01" + "00" * 8 + "80" + "010000020000030000040000" + "02028d16"
    assert wgw("pmd_data", frame).returncode == 1
    done = wgw("pmd_data", frame, "--channels", "4", "--resolution", "22")
    assert done.returncode == 0
    assert json.loads(done.stdout)["samples"] == [[1, 2, 3, 4], [2, 1, 3, 2], [0, 2, 4, 2]]


def test_stdin_mode_decodes_line_by_line() -> None:
    """Test bulk decoding: one JSON object per line, {"error": ...} for a malformed one."""
    done = wgw("2a1c", "-", stdin="00a00a00fe\n02a00a00\n\n00a10a00fe\n")
    assert done.returncode == 0
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(lines) == 3
    assert lines[0]["temperature"] == 27.2
    assert "error" in lines[1] and "truncated" in lines[1]["error"]
    assert lines[2]["temperature"] == 27.21
