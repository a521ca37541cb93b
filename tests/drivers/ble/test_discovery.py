"""Scanning and selection: configured devices, name patterns, addresses, services."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING

from drivers.ble.backends import simulated
from drivers.ble.discovery import AllowList, scan
from drivers.gatt import uuids
from drivers.sim.devices import SimDevice, preset
from drivers.sim.world import SimWorld

if TYPE_CHECKING:
    from pathlib import Path


def test_selection_reasons() -> None:
    """Test configured beats allow-list, and each allow-list kind matches on its own."""
    allow = AllowList(
        configured=frozenset({"5A:00:00:00:00:01"}),
        names=("Polar H10 *",),
        addresses=frozenset({"5A:00:00:00:00:09"}),
        service_uuids=frozenset({uuids.PULSE_OXIMETER_SERVICE}),
    )
    assert allow.selects("5a:00:00:00:00:01", "Polar H10 1", []) == "configured"
    assert allow.selects("5A:00:00:00:00:02", "Polar H10 ABCD", []) == "allow-list"
    assert allow.selects("5A:00:00:00:00:09", None, []) == "allow-list"
    assert (
        allow.selects("5A:00:00:00:00:03", "Oxi", [uuids.PULSE_OXIMETER_SERVICE.upper()])
        == "allow-list"
    )
    assert allow.selects("5A:00:00:00:00:04", "Polar Verity", [uuids.HEART_RATE_SERVICE]) is None


async def test_scan_reports_profiles_rssi_and_selection() -> None:
    """Test a scan of simulated devices through bleak's scanner (a PineTime's Motion Service
    named among its profiles)."""
    devices = [
        SimDevice(preset("watch", "5A:00:00:00:00:01", "W")),
        SimDevice(preset("strap", "5A:00:00:00:00:02", "Polar H10 1")),
        SimDevice(preset("pinetime", "5A:00:00:00:00:0B", "InfiniTime")),
    ]
    devices[1].rssi_dbm = -40
    async with SimWorld(devices, advert_interval_s=0.01) as world:
        sightings = await scan(simulated(world), 0.1, AllowList(names=("Polar H10 *",)))
    by_address = {s.address: s for s in sightings}
    assert "infinitime_motion" in by_address["5A:00:00:00:00:0B"].profiles
    sightings = [s for s in sightings if s.address != "5A:00:00:00:00:0B"]
    assert [s.address for s in sightings] == ["5A:00:00:00:00:02", "5A:00:00:00:00:01"]
    assert sightings[0].selected == "allow-list"
    assert sightings[0].profiles == ("heart_rate", "battery", "device_information", "polar_pmd")
    assert sightings[1].selected is None
    assert "pulse_oximeter" in sightings[1].profiles


def test_wgw_scan_json(tmp_path: Path) -> None:
    """Test `wgw scan --json` against the simulated backend from a config file."""
    config = tmp_path / "c.yaml"
    config.write_text(
        "ble:\n  backend: sim\n  sim:\n    devices:\n"
        "      - {model: patch, address: '5A:00:00:00:00:07'}\n"
        "devices:\n  - {id: p, address: '5A:00:00:00:00:07'}\n"
        "cloud: {tcm: {api_key: k}}\n"
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway",
            "scan",
            "--config",
            str(config),
            "--duration",
            "0.3",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    (line,) = done.stdout.splitlines()
    found = json.loads(line)
    assert found["address"] == "5A:00:00:00:00:07"
    assert found["selected"] == "configured"
    assert found["name"] == "SimPatch-07"
