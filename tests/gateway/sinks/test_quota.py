"""Quota arithmetic: a day of 1 Hz vitals from 5 devices, uploaded live on the free plan,
fits the plan's daily quota (1,000 requests) without a single 429. The plan's windows are
shrunk 4,000 times (a day lasts 21.6 s) on both sides; the arithmetic is the same.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from pydantic import SecretStr

from buffers.outbox import Outbox
from buffers.records import OutboxRecord
from gateway.clients.limiter import ClientRateLimiter
from gateway.clients.tcm import TcmClient
from gateway.config import SyncConfig, TcmConfig
from gateway.emulator.app import STATE_KEY, EmulatorConfig, emulator_app
from gateway.rate_limits import PLANS
from gateway.sinks import health_upload
from tests.support import wait_for

if TYPE_CHECKING:
    from pathlib import Path

SCALE = 1 / 4000
DEVICES = 5
DAY_S = 86_400
PAYLOAD = b'{"heart_rate_bpm":70}'


@pytest.mark.timeout(180)
async def test_a_day_of_vitals_from_five_devices_fits_the_free_daily_quota(tmp_path: Path) -> None:
    """Test <= 1,000 requests for 432,000 records, none refused, none lost or duplicated."""
    server = TestServer(
        emulator_app(EmulatorConfig(plan="free", window_scale=SCALE)), host="127.0.0.1"
    )
    await server.start_server()
    state = server.app[STATE_KEY]
    tcm = TcmConfig(base_url=str(server.make_url("/api/v1")), api_key=SecretStr("tcm-demo-key"))
    sync = SyncConfig(min_request_interval_s=0, batch_max_records=2000, record_interval_s=0)
    try:
        async with (
            Outbox(tmp_path / "o.sqlite", {health_upload.SINK: health_upload.wants}) as outbox,
            aiohttp.ClientSession() as session,
        ):
            limiter = ClientRateLimiter(PLANS["free"], scale=SCALE)
            sink = health_upload.HealthUploadSink(outbox, TcmClient(session, tcm, limiter), sync)
            consumer = asyncio.create_task(sink.run())
            start, base = time.monotonic(), 1.8e9
            for second in range(DAY_S):  # readings arrive live, one a second per device
                for device in range(DEVICES):
                    await outbox.put(
                        OutboxRecord(
                            "vital", f"d{device}", "heart_rate", second, base + second, PAYLOAD
                        )
                    )
                if second % 200 == 0 and (ahead := start + second * SCALE - time.monotonic()) > 0:
                    await asyncio.sleep(ahead)
            await wait_for(
                lambda: sum(len(r) for r in state.records.values()) == DEVICES * DAY_S, timeout_s=60
            )
            consumer.cancel()
            await asyncio.gather(consumer, return_exceptions=True)
    finally:
        await server.close()
    print(f"{state.uploads} requests carried {DEVICES * DAY_S} records")
    assert state.limited == 0  # never refused: the client kept inside every window
    assert state.uploads <= PLANS["free"][2]  # the daily quota
    assert all(count == 0 for count in state.duplicates.values())
    for device in range(DEVICES):
        stamps = [r["timestamp"] for r in state.records[f"d{device}"]]
        assert stamps == sorted(stamps)  # in order per device


async def test_each_request_carries_a_full_batch_of_one_device_among_many(
    tmp_path: Path,
) -> None:
    """Test packing with ten devices' readings interleaved in the outbox: a request carries
    ``batch_max_records`` of its device's readings, not its share of a mixed lease (the free
    plan's pace allows one request per 259 s; ten devices at ~1.4 readings/s need ~3,600 a
    request to keep up).
    """
    scale = 1 / 100  # the plan's pace: 13 ms a request instead of 1.3 s
    server = TestServer(
        emulator_app(EmulatorConfig(plan="enterprise", window_scale=scale)), host="127.0.0.1"
    )
    await server.start_server()
    state = server.app[STATE_KEY]
    tcm = TcmConfig(base_url=str(server.make_url("/api/v1")), api_key=SecretStr("tcm-demo-key"))
    sync = SyncConfig(
        min_request_interval_s=0,
        batch_max_records=500,
        record_interval_s=0,
        backfill_after_s=3600,  # one lane: this is not about live-first
    )
    devices, per_device = 10, 1000
    base = time.time() - 600
    try:
        async with (
            Outbox(tmp_path / "o.sqlite", {health_upload.SINK: health_upload.wants}) as outbox,
            aiohttp.ClientSession() as session,
        ):
            for i in range(per_device):
                for device in range(devices):
                    await outbox.put(
                        OutboxRecord("vital", f"d{device}", "heart_rate", i, base + i, PAYLOAD)
                    )
            await outbox.flush()
            sink = health_upload.HealthUploadSink(
                outbox,
                TcmClient(session, tcm, ClientRateLimiter(PLANS["enterprise"], scale=scale)),
                sync,
            )
            consumer = asyncio.create_task(sink.run())
            await wait_for(
                lambda: sum(len(r) for r in state.records.values()) == devices * per_device
            )
            consumer.cancel()
            await asyncio.gather(consumer, return_exceptions=True)
    finally:
        await server.close()
    assert state.uploads == devices * per_device // 500  # 20: each one full
    for device in range(devices):
        stamps = [r["timestamp"] for r in state.records[f"d{device}"]]
        assert stamps == sorted(stamps) and len(stamps) == per_device
