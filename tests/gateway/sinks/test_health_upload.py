"""HealthUploadSink: outbox rows to the emulator, through retries and a dead letter."""

from __future__ import annotations

import asyncio
import json
import time
from typing import TYPE_CHECKING

import aiohttp
from pydantic import SecretStr

from buffers.outbox import Outbox
from buffers.records import OutboxRecord
from gateway.clients.tcm import TcmClient
from gateway.config import SyncConfig, TcmConfig
from gateway.emulator.app import STATE_KEY
from gateway.sinks import health_upload
from tests.support import wait_for

if TYPE_CHECKING:
    from pathlib import Path

    from aiohttp.test_utils import TestServer


def reading(seq: int, bpm: int) -> OutboxRecord:
    payload = json.dumps({"heart_rate_bpm": bpm}).encode()
    return OutboxRecord("vital", "w1", "heart_rate", seq, 1_790_000_000.0 + seq, payload)


async def test_retries_then_delivers_in_order_and_dead_letters_a_refused_batch(
    tmp_path: Path, emulator: TestServer
) -> None:
    """Test 503s retried without loss or duplicates, then a 400 dead-lettered and counted."""
    state = emulator.app[STATE_KEY]
    tcm = TcmConfig(base_url=str(emulator.make_url("/api/v1")), api_key=SecretStr("tcm-demo-key"))
    sync = SyncConfig(
        min_request_interval_s=0, retry_min_s=0.01, retry_max_s=0.05, record_interval_s=0
    )
    subscriptions = {health_upload.SINK: health_upload.wants}
    async with (
        Outbox(tmp_path / "o.sqlite", subscriptions, flush_interval_ms=10) as outbox,
        aiohttp.ClientSession() as session,
    ):
        sink = health_upload.HealthUploadSink(outbox, TcmClient(session, tcm), sync)
        state.faults.fail_next.extend([503, 503])
        for i in range(5):
            await outbox.put(reading(i, 60 + i))
        task = asyncio.create_task(sink.run())
        await wait_for(lambda: len(state.records.get("w1", [])) == 5)
        assert [r["heart_rate"] for r in state.records["w1"]] == [60, 61, 62, 63, 64]
        assert state.duplicates["w1"] == 0
        assert sink.statistics().retries == 2

        state.faults.fail_next.append(400)
        await outbox.put(reading(5, 99))
        await wait_for(lambda: sink.statistics().dead_lettered == 1)
        await outbox.put(reading(6, 70))
        await wait_for(lambda: len(state.records["w1"]) == 6)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await outbox.flush()  # acks ride on the next group commit
        stats = await outbox.statistics()
    assert state.records["w1"][-1]["heart_rate"] == 70
    assert stats.backlog[health_upload.SINK].dead_letters == 1
    assert stats.backlog[health_upload.SINK].pending == 0


async def test_readings_are_uploaded_as_one_record_per_interval(
    tmp_path: Path, emulator: TestServer
) -> None:
    """Test 10 readings over two closed 1 s intervals: two records carrying the mean rates."""
    state = emulator.app[STATE_KEY]
    tcm = TcmConfig(base_url=str(emulator.make_url("/api/v1")), api_key=SecretStr("tcm-demo-key"))
    sync = SyncConfig(min_request_interval_s=0, record_interval_s=1.0, record_grace_s=0.0)
    start = float(int(time.time()) - 100)  # long closed
    async with (
        Outbox(
            tmp_path / "o.sqlite", {health_upload.SINK: health_upload.wants}, flush_interval_ms=5
        ) as outbox,
        aiohttp.ClientSession() as session,
    ):
        for i in range(10):
            payload = json.dumps({"heart_rate_bpm": 60 + i}).encode()
            await outbox.put(OutboxRecord("vital", "w2", "heart_rate", i, start + 0.2 * i, payload))
        sink = health_upload.HealthUploadSink(outbox, TcmClient(session, tcm), sync)
        task = asyncio.create_task(sink.run())
        await wait_for(lambda: len(state.records.get("w2", [])) == 2)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert [r["heart_rate"] for r in state.records["w2"]] == [62.0, 67.0]
