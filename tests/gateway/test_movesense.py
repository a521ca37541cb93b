"""A Movesense sensor through the whole daemon: its resources from config, its ECG stored at its
rate, its heart rate and temperature in the uploaded health records."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import TYPE_CHECKING

from gateway.config import Settings
from gateway.daemon import Daemon
from gateway.emulator.app import STATE_KEY
from tests.support import daemon_config, wait_for

if TYPE_CHECKING:
    from pathlib import Path

    from aiohttp.test_utils import TestServer


async def test_a_movesense_sensor_is_stored_and_uploaded(
    tmp_path: Path, emulator: TestServer
) -> None:
    """Test ECG (the mV path), HR and temperature subscribed from config: ECG rows at 250 Hz
    in µV, and health records carrying the sensor's heart rate and temperature."""
    raw = daemon_config(
        tmp_path,
        str(emulator.make_url("")),
        [{"model": "movesense", "address": "5A:00:00:00:00:07", "name": "Movesense 1"}],
        [
            {
                "id": "ms",
                "address": "5A:00:00:00:00:07",
                "movesense": ["/Meas/ECG/250/mV", "/Meas/HR", "/Meas/Temp"],
            }
        ],
        sync={"record_interval_s": 0, "min_request_interval_s": 0.05},
    )
    daemon = Daemon(Settings.model_validate(raw))
    runner = asyncio.create_task(daemon.run())
    state = emulator.app[STATE_KEY]

    def uploaded(field: str) -> int:
        return sum(r[field] is not None for r in state.records.get("ms", []))

    try:
        await daemon.wait_ready()
        await wait_for(lambda: uploaded("heart_rate") >= 2 and uploaded("temperature") >= 1)
    finally:
        daemon.stop()
        await runner
    with sqlite3.connect(tmp_path / "wgw.sqlite") as db:
        waves = db.execute(
            "SELECT DISTINCT stream, sample_rate_hz FROM records WHERE kind = 'waveform'"
        ).fetchall()
    assert waves == [("ecg", 250.0)]
    records = state.records["ms"]
    assert all(40 <= r["heart_rate"] <= 200 for r in records if r["heart_rate"] is not None)
    assert all(33.0 < r["temperature"] < 34.0 for r in records if r["temperature"] is not None)
