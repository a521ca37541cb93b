"""`wgw diagnose`: the latest vitals from the outbox, a tongue image, the answer printed."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import TYPE_CHECKING

import yaml

from buffers.outbox import Outbox
from buffers.records import OutboxRecord
from gateway.emulator.app import STATE_KEY

if TYPE_CHECKING:
    from pathlib import Path

    from aiohttp.test_utils import TestServer


async def test_diagnose_with_the_devices_latest_vitals(
    tmp_path: Path, emulator: TestServer
) -> None:
    """Test that the newest reading of each stream goes in, and the diagnosis comes out."""
    db = tmp_path / "wgw.sqlite"
    async with Outbox(db, {}, flush_interval_ms=5) as outbox:
        for seq, (stream, values) in enumerate(
            [
                ("heart_rate", {"heart_rate_bpm": 60}),
                ("heart_rate", {"heart_rate_bpm": 88}),
                ("spo2", {"spo2_pct": 94.0, "pulse_rate_bpm": 87.0}),
                ("temperature", {"temperature": 99.5, "unit": "F"}),
                ("blood_pressure", {"systolic": 131.0, "diastolic": 85.0, "unit": "mmHg"}),
            ]
        ):
            await outbox.put(
                OutboxRecord("vital", "w1", stream, seq, 1.8e9 + seq, json.dumps(values).encode())
            )
    image = tmp_path / "tongue.jpg"
    image.write_bytes(b"\xff\xd8\xff\xe0" + bytes(500))
    config = tmp_path / "c.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "storage": {"path": str(db)},
                "devices": [{"id": "w1", "address": "5A:00:00:00:00:01"}],
                "cloud": {
                    "tcm": {
                        "base_url": str(emulator.make_url("/api/v1")),
                        "api_key": "tcm-demo-key",
                    }
                },
            }
        )
    )
    # the emulator runs in this event loop: the child must not block it
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "diagnose",
        "--config",
        str(config),
        "--symptoms",
        "fatigue, palpitations",
        "--tongue",
        str(image),
        "--json",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(child.communicate(), 30)
    assert child.returncode == 0, stderr.decode()
    answer = json.loads(stdout)
    assert len(answer["meridian_status"]) == 12
    assert answer["tongue_analysis_id"] in emulator.app[STATE_KEY].tongue_analyses
    assert (
        "heart rate 88 bpm, SpO2 94 %, temperature 37.5 C"
        in answer["overall_assessment"]["summary"]
    )
