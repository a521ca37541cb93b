"""``ble.backend: bumble``: the daemon and ``wgw scan`` on bumble's Bluetooth stack."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING

import pytest
import yaml

from gateway.cli.entry import main
from gateway.config import Settings
from gateway.daemon import Daemon
from tests.support import STRAP_ECG, daemon_config, wait_for

if TYPE_CHECKING:
    from pathlib import Path

    from aiohttp.test_utils import TestServer

    from drivers.sim.devices import SimDevice

STRAP = "5A:00:00:00:00:03"


def strap_config(
    tmp_path: Path, emulator_url: str, *, heart_rate_interval_ms: int = 250, **sim: object
) -> dict[str, object]:
    return daemon_config(
        tmp_path,
        emulator_url,
        [{"model": "strap", "address": STRAP, "heart_rate_interval_ms": heart_rate_interval_ms}],
        [{"id": "strap", "address": STRAP, "pmd": [STRAP_ECG]}],
        ble={"backend": "bumble", "reconnect_min_s": 0.01, "reconnect_max_s": 0.1, "sim": sim},
    )


@pytest.mark.parametrize(
    ("heart_rate_interval_ms", "sim"),
    [(250, {}), (5, {"connection_interval_ms": 30})],
    ids=["each-packet-as-sent", "six-heart-rates-a-30-ms-connection-event"],
)
async def test_the_daemon_stores_every_sample_a_strap_sends_over_bumble(
    tmp_path: Path, emulator: TestServer, heart_rate_interval_ms: int, sim: dict[str, object]
) -> None:
    """Test the whole daemon on bumble: every ECG sample and heart rate the strap sent is
    stored; also when the radio carries data only at connection events, several heart rate
    notifications in each.
    """
    config = strap_config(
        tmp_path,
        str(emulator.make_url("")),
        heart_rate_interval_ms=heart_rate_interval_ms,
        **sim,
    )
    daemon = Daemon(Settings.model_validate(config))
    assert daemon.sim_world is not None
    strap: SimDevice = daemon.sim_world.peripherals[STRAP]  # type: ignore[assignment]
    runner = asyncio.create_task(daemon.run())
    try:
        await daemon.wait_ready()

        async def streaming() -> bool:
            return (await daemon.statistics()).devices[0].samples > 1000

        await wait_for(streaming, timeout_s=20)
        daemon.sim_world.pause()  # the strap stops measuring: what it sent must all arrive

        async def all_received() -> bool:  # readings still on their way over the radio, too
            device = (await daemon.statistics()).devices[0]
            readings = strap.counters["heart_rate"].sent + strap.counters["battery"].sent
            return device.samples == strap.counters["ecg"].sent and device.readings == readings

        await wait_for(all_received, timeout_s=10)
    finally:
        daemon.stop()
        await runner
    stats = await daemon.statistics()
    (device,) = stats.devices
    assert device.decode_errors == 0 and device.connects == 1
    assert device.readings == strap.counters["heart_rate"].sent + strap.counters["battery"].sent
    assert stats.frames_stored == stats.outbox.total_rows > 0


def test_wgw_scan_lists_the_devices_bumble_hears(
    tmp_path: Path, emulator: TestServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Test ``wgw scan --json`` on bumble: the strap, its name and its advertised profiles."""
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(strap_config(tmp_path, str(emulator.make_url("")))))
    assert main(["scan", "--config", str(config), "--duration", "0.5", "--json"]) == 0
    (sighting,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sighting["address"] == STRAP and sighting["selected"] == "configured"
    assert "heart_rate" in sighting["profiles"] and "polar_pmd" in sighting["profiles"]
