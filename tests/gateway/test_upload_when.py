"""A phone hub's upload policy (``sync.upload_when``): power and network read from a /sys tree
the test writes, NetworkManager's metered flag, and the health upload waiting and resuming."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING

import aiohttp
import pytest
from pydantic import SecretStr

from buffers.outbox import Outbox
from buffers.records import OutboxRecord
from gateway.clients.tcm import TcmClient
from gateway.config import SyncConfig, TcmConfig, UploadWhenConfig
from gateway.emulator.app import STATE_KEY
from gateway.sinks import health_upload
from gateway.upload_when import (
    UploadConditions,
    connected_interfaces,
    networkmanager_metered,
    read_power,
)
from tests.support import wait_for

if TYPE_CHECKING:
    from pathlib import Path

    from aiohttp.test_utils import TestServer


def attributes(folder: Path, **values: str) -> Path:
    """A sysfs node: one file per attribute."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, value in values.items():
        (folder / name).write_text(value + "\n")
    return folder


def battery(root: Path, pct: int, status: str = "Discharging") -> None:
    supply = root / "class" / "power_supply" / "battery"
    attributes(supply, type="Battery", capacity=str(pct), status=status)


def charger(root: Path, *, online: bool) -> None:
    supply = root / "class" / "power_supply" / "ac"
    attributes(supply, type="Mains", online="1" if online else "0")


def interface(root: Path, name: str, state: str, *, kind: str, physical: bool = True) -> None:
    node = attributes(root / "class" / "net" / name, operstate=state, type="1", uevent="")
    if physical:
        (node / "device").mkdir(exist_ok=True)
    if kind == "wifi":
        (node / "wireless").mkdir(exist_ok=True)
    elif kind == "cellular":
        attributes(node, type="519", uevent="DEVTYPE=wwan\nINTERFACE=" + name)


def test_power_is_read_from_batteries_and_chargers(tmp_path: Path) -> None:
    """Test a discharging battery, the same with a charger plugged in, a full one, and a host
    without any battery (a Pi: on mains, no level)."""
    assert read_power(tmp_path).charging and read_power(tmp_path).battery_pct is None
    battery(tmp_path, 40)
    charger(tmp_path, online=False)
    assert (read_power(tmp_path).charging, read_power(tmp_path).battery_pct) == (False, 40.0)
    charger(tmp_path, online=True)
    assert read_power(tmp_path).charging
    charger(tmp_path, online=False)
    battery(tmp_path, 100, "Full")
    assert read_power(tmp_path).charging


def test_interfaces_are_classed_and_virtual_or_down_ones_left_out(tmp_path: Path) -> None:
    """Test Wi-Fi, Ethernet and a modem up, an Ethernet down, a bridge and loopback (no
    device): only the physical ones that are up count, each by kind."""
    interface(tmp_path, "wlan0", "up", kind="wifi")
    interface(tmp_path, "eth0", "down", kind="ethernet")
    interface(tmp_path, "end0", "up", kind="ethernet")
    interface(tmp_path, "wwan0", "up", kind="cellular")
    interface(tmp_path, "docker0", "up", kind="ethernet", physical=False)
    interface(tmp_path, "lo", "unknown", kind="loopback", physical=False)
    assert connected_interfaces(tmp_path) == {
        "end0": "ethernet",
        "wlan0": "wifi",
        "wwan0": "cellular",
    }


async def test_each_policy_says_why_it_waits(tmp_path: Path) -> None:
    """Test charging, battery level, Wi-Fi only and unmetered (with NetworkManager's flag),
    each refused with its reason and allowed once its condition holds."""
    metered = [False]

    async def networkmanager() -> bool | None:
        return metered[0]

    def conditions(**policy: object) -> UploadConditions:
        config = UploadWhenConfig.model_validate({"sys_root": tmp_path, **policy})
        return UploadConditions(config, networkmanager)

    battery(tmp_path, 20)
    interface(tmp_path, "wwan0", "up", kind="cellular")
    assert await conditions().blocked() is None  # no policy: never waits
    assert "charger" in (await conditions(charging=True).blocked() or "")
    assert "20%, below 30%" in (await conditions(min_battery_pct=30).blocked() or "")
    assert await conditions(min_battery_pct=15).blocked() is None
    assert "Wi-Fi" in (await conditions(network="wifi").blocked() or "")
    assert "Wi-Fi or Ethernet" in (await conditions(network="unmetered").blocked() or "")
    interface(tmp_path, "wlan0", "up", kind="wifi")
    assert await conditions(network="wifi").blocked() is None
    assert await conditions(network="unmetered").blocked() is None
    metered[0] = True  # a phone's hotspot: Wi-Fi, but metered
    assert "metered" in (await conditions(network="unmetered").blocked() or "")
    assert await conditions(network="wifi").blocked() is None


async def test_without_networkmanager_the_metered_flag_is_unknown() -> None:
    """Test the D-Bus lookup on a machine without NetworkManager (this one): None, at once."""
    async with asyncio.timeout(10):
        assert await networkmanager_metered() is None


@pytest.mark.timeout(60)
async def test_uploads_wait_on_a_low_battery_and_go_once_it_charges(
    tmp_path: Path, emulator: TestServer
) -> None:
    """Test the health upload with ``min_battery_pct: 30`` on a phone at 10%: no request, the
    reason in its statistics; at 80% every reading goes up and the reason clears."""
    state = emulator.app[STATE_KEY]
    root = tmp_path / "sys"
    battery(root, 10)
    tcm = TcmConfig(base_url=str(emulator.make_url("/api/v1")), api_key=SecretStr("tcm-demo-key"))
    sync = SyncConfig.model_validate(
        {
            "min_request_interval_s": 0,
            "record_interval_s": 0,
            "upload_when": {"min_battery_pct": 30, "sys_root": root, "check_interval_s": 0.05},
        }
    )
    async with (
        Outbox(
            tmp_path / "o.sqlite", {health_upload.SINK: health_upload.wants}, flush_interval_ms=5
        ) as outbox,
        aiohttp.ClientSession() as session,
    ):
        for i in range(5):
            payload = json.dumps({"heart_rate_bpm": 60 + i}).encode()
            await outbox.put(OutboxRecord("vital", "p1", "heart_rate", i, 1.79e9 + i, payload))
        sink = health_upload.HealthUploadSink(outbox, TcmClient(session, tcm), sync)
        task = asyncio.create_task(sink.run())
        await wait_for(lambda: sink.statistics().waiting_for is not None)
        assert "battery at 10%" in (sink.statistics().waiting_for or "")
        assert sink.statistics().requests == 0 and not state.records.get("p1")
        battery(root, 80, "Charging")
        await wait_for(lambda: len(state.records.get("p1", [])) == 5)
        assert sink.statistics().waiting_for is None
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
