"""The simulator as config builds it: faults played on the devices' own clock, and its ground
truth served at /api/sim for benchmarks.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import aiohttp

from gateway.config import Settings
from gateway.daemon import Daemon
from tests.support import daemon_config, wait_for

if TYPE_CHECKING:
    from pathlib import Path

    from aiohttp.test_utils import TestServer


async def test_scheduled_faults_play_and_the_ground_truth_adds_up(
    tmp_path: Path, emulator: TestServer
) -> None:
    """Test link drops every 2 simulated seconds and a malformed window, at 10x speed."""
    raw = daemon_config(
        tmp_path,
        str(emulator.make_url("")),
        [
            {
                "model": "strap",
                "address": "5A:00:00:00:00:01",
                "heart_rate_interval_ms": 100,
                "faults": [
                    {"kind": "link_drop", "at_s": 2, "every_s": 2},
                    {"kind": "malformed", "at_s": 1, "duration_s": 3, "rate": 0.5},
                ],
            }
        ],
        [{"id": "s1", "address": "5A:00:00:00:00:01"}],
        ble={"sim": {"speed": 10.0}, "reconnect_max_s": 0.05, "scan_timeout_s": 0.5},
        http={"enabled": True, "port": 0},
    )
    daemon = Daemon(Settings.model_validate(raw))
    runner = asyncio.create_task(daemon.run())
    try:
        await daemon.wait_ready()

        async def three_drops() -> bool:
            return (await daemon.statistics()).devices[0].links_lost >= 3

        await wait_for(three_drops, timeout_s=20)
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{daemon.status_url}/api/sim") as response,
        ):
            truth: list[dict[str, Any]] = await response.json()
    finally:
        daemon.stop()
        await runner
    (strap,) = truth
    assert strap["faults_played"]["link_drop"] >= 3
    assert strap["faults_played"]["malformed"] == 1
    assert strap["link_drops"] >= 3
    hr = strap["streams"]["heart_rate"]
    assert hr["malformed"] > 0
    fates = ("sent", "lost_link_down", "lost_radio", "malformed", "stalled")
    assert hr["produced"] == sum(hr[f] for f in fates)  # every reading has one fate
    final = await daemon.statistics()
    assert final.devices[0].decode_errors > 0
