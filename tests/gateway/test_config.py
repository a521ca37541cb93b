"""Configuration: refused with the field's path and reason, secrets hidden, env overrides."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gateway.config import load_settings
from gateway.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]

MINIMAL = """
cloud:
  tcm:
    api_key: k-123-secret
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_the_demo_config_loads() -> None:
    """Test that the repository's config.yaml is valid."""
    settings = load_settings(ROOT / "config.yaml")
    assert settings.ble.backend == "sim"
    assert [d.id for d in settings.devices] == [
        "watch-01",
        "cuff-02",
        "pinetime-03",
        "movesense-04",
    ]
    models = [d.model for d in settings.ble.sim.devices]
    assert models == ["watch", "cuff", "pinetime", "movesense"]


def test_defaults_follow_api_md(tmp_path: Path) -> None:
    """Test that the API paths and base URLs default to API.md's values."""
    s = load_settings(write(tmp_path, MINIMAL))
    assert s.cloud.tcm.base_url == "https://api.tcm-ai.org/api/v1"
    assert s.cloud.tcm.upload_path == "/health/upload"
    assert s.cloud.heartvoice.ppg_flow_ecg_path == "/api/v1/experimental/ppgFlowEcg"
    assert s.storage.flush_interval_ms == 1000
    assert s.cloud.tcm.verify_tls


def test_every_problem_is_reported_with_its_dotted_path(tmp_path: Path) -> None:
    """Test that unknown keys, wrong types and out-of-range values each name their field."""
    bad = (
        MINIMAL
        + """
storage:
  flush_interval_ms: 0
ble:
  backfill: sometimes
  sim:
    connection_interval_ms: 5
    devices:
      - {model: cuff, address: "5A:00:00:00:00:09", blood_pressure_interval_s: 0}
mqtt:
  port: "not a port"
  colour: blue
devices:
  - id: a
    address: "5A:00:00:00:00:01"
  - id: b
    address: "5A:00:00:00:00:02"
  - id: c
    address: nope
"""
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, bad))
    problems = caught.value.problems
    assert any(p.startswith("storage.flush_interval_ms: ") for p in problems)
    assert any(p.startswith("mqtt.port: ") for p in problems)
    assert "mqtt.colour: unknown field" in problems
    assert any(p.startswith("devices[2].address: ") for p in problems)
    assert any(p.startswith("ble.backfill: ") for p in problems)
    assert any(p.startswith("ble.sim.devices[0].blood_pressure_interval_s: ") for p in problems)
    assert any(p.startswith("ble.sim.connection_interval_ms: ") for p in problems)  # >= 7.5
    assert len(problems) == 7


def test_missing_credentials_and_bad_yaml_are_refused(tmp_path: Path) -> None:
    """Test that a TCM section without credentials, and a file that is not YAML, are refused."""
    with pytest.raises(ConfigError, match=r"cloud\.tcm: Value error, set api_key"):
        load_settings(write(tmp_path, "cloud:\n  tcm: {}\n"))
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(write(tmp_path, "cloud: [\n"))
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "absent.yaml")


def test_environment_overrides_the_file_and_secrets_stay_hidden(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Test that WGW_ variables override YAML, and a secret never shows in repr or str."""
    monkeypatch.setenv("WGW_CLOUD__TCM__API_KEY", "from-env-very-secret")
    monkeypatch.setenv("WGW_MQTT__PORT", "1999")
    s = load_settings(write(tmp_path, MINIMAL))
    assert s.mqtt.port == 1999
    assert s.cloud.tcm.api_key is not None
    assert s.cloud.tcm.api_key.get_secret_value() == "from-env-very-secret"
    assert "from-env-very-secret" not in repr(s)
    assert "from-env-very-secret" not in str(s)


def test_wgw_run_refuses_bad_config_with_exit_78(tmp_path: Path) -> None:
    """Test that `wgw run` prints one line per problem, no traceback, and exits 78."""
    path = write(tmp_path, MINIMAL + "ble:\n  backend: bluetooth\n  scan_timeout_s: -1\n")
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "run", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 78
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("config error: ble.backend: ")
    assert lines[1].startswith("config error: ble.scan_timeout_s: ")
    assert "Traceback" not in done.stderr


def test_the_example_deployment_config_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Test config.example.yaml with its secrets in the environment, as the unit provides them."""
    monkeypatch.setenv("WGW_CLOUD__TCM__PASSWORD", "from-the-environment")
    settings = load_settings(ROOT / "config.example.yaml")
    assert settings.ble.backend == "bluez"
    assert settings.cloud.tcm.password is not None
    assert [d.id for d in settings.devices] == [
        "p017-strap",
        "p017-arm",
        "p017-oximeter",
        "p017-cuff",
        "p017-pinetime",
        "p017-movesense",
    ]
    assert settings.devices[-2].set_clock
    assert settings.devices[-1].movesense == ("/Meas/ECG/250/mV", "/Meas/IMU6/52", "/Meas/HR")
    assert settings.ble.backfill


def test_pairing_wants_a_six_digit_passkey_only_with_passkey_pairing(tmp_path: Path) -> None:
    """Test the pairing settings: a passkey of six digits with pairing: passkey, refused with
    the device's path otherwise, and never shown (it is a secret, like the API key).
    """
    device = "devices:\n  - id: cuff\n    address: 5A:00:00:00:0E:01\n"
    good = load_settings(
        write(tmp_path, MINIMAL + device + "    pairing: passkey\n    passkey: '024680'\n")
    )
    assert good.devices[0].passkey is not None
    assert good.devices[0].passkey.get_secret_value() == "024680"
    assert "024680" not in repr(good)
    for extra, reason in (
        ("    pairing: passkey\n", "six digits"),
        ("    pairing: passkey\n    passkey: '12345'\n", "six digits"),
        ("    pairing: just_works\n    passkey: '123456'\n", "only with pairing: passkey"),
    ):
        with pytest.raises(ConfigError) as refused:
            load_settings(write(tmp_path, MINIMAL + device + extra))
        assert "devices[0]" in str(refused.value) and reason in str(refused.value)
        assert "12345" not in str(refused.value)


def test_movesense_paths_the_firmware_does_not_offer_are_refused_by_path(tmp_path: Path) -> None:
    """Test a Movesense path with a rate the firmware lacks, and one the gateway does not read:
    each refused with its field path and what is offered."""
    bad = MINIMAL + (
        "devices:\n  - id: m\n    address: '5A:00:00:00:00:01'\n"
        "    movesense: [/Meas/ECG/250, /Meas/ECG/300, /Meas/Gyro/52]\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, bad))
    problems = caught.value.problems
    assert len(problems) == 2
    assert problems[0].startswith("devices[0].movesense[1]: ") and "125, 128, 200" in problems[0]
    assert problems[1].startswith("devices[0].movesense[2]: ") and "/Meas/HR" in problems[1]


def test_ppi_takes_no_settings_and_the_waveforms_need_theirs(tmp_path: Path) -> None:
    """Test a PPI stream given alone, and refused with settings; an ECG stream without its."""
    good = MINIMAL + (
        "devices:\n  - id: a\n    address: '5A:00:00:00:00:01'\n"
        "    pmd: [{measurement: ppi}, {measurement: ppg, sample_rate_hz: 55,"
        " resolution_bits: 22, channels: 4}]\n"
    )
    settings = load_settings(write(tmp_path, good))
    assert [p.measurement for p in settings.devices[0].pmd] == ["ppi", "ppg"]
    bad = MINIMAL + (
        "devices:\n  - id: a\n    address: '5A:00:00:00:00:01'\n"
        "    pmd: [{measurement: ppi, sample_rate_hz: 1}, {measurement: ecg}]\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, bad))
    problems = caught.value.problems
    assert any(p.startswith("devices[0].pmd[0]: ") and "ppi takes no" in p for p in problems)
    assert any(p.startswith("devices[0].pmd[1]: ") and "ecg needs" in p for p in problems)
