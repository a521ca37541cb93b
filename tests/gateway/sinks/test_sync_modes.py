"""Batch mode, `wgw sync` (a batch now) and `wgw sync --full` (the retained history again)."""

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
    from collections.abc import AsyncIterator
    from contextlib import AbstractAsyncContextManager
    from pathlib import Path

    from aiohttp.test_utils import TestServer

START = float(int(time.time()) // 60 * 60 - 3600)  # a whole minute, an hour ago: long closed


def reading(device: str, seq: int, bpm: int, t: float) -> OutboxRecord:
    payload = json.dumps({"heart_rate_bpm": bpm}).encode()
    return OutboxRecord("vital", device, "heart_rate", seq, t, payload)


def running(
    tmp_path: Path, emulator: TestServer, sync: SyncConfig
) -> AbstractAsyncContextManager[tuple[Outbox, health_upload.HealthUploadSink]]:
    import contextlib  # noqa: PLC0415

    @contextlib.asynccontextmanager
    async def context() -> AsyncIterator[tuple[Outbox, health_upload.HealthUploadSink]]:
        tcm = TcmConfig(
            base_url=str(emulator.make_url("/api/v1")), api_key=SecretStr("tcm-demo-key")
        )
        async with (
            Outbox(
                tmp_path / "o.sqlite",
                {health_upload.SINK: health_upload.wants},
                flush_interval_ms=5,
            ) as outbox,
            aiohttp.ClientSession() as session,
        ):
            sink = health_upload.HealthUploadSink(outbox, TcmClient(session, tcm), sync)
            task = asyncio.create_task(sink.run())
            try:
                yield outbox, sink
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    return context()


async def test_batch_mode_waits_for_the_interval_then_drains_in_the_fewest_requests(
    tmp_path: Path, emulator: TestServer
) -> None:
    """Test nothing before the batch interval, then 3 devices x 50 records in 3 requests."""
    state = emulator.app[STATE_KEY]
    sync = SyncConfig(
        mode="batch", batch_interval_s=1.0, min_request_interval_s=0, record_interval_s=0
    )
    async with running(tmp_path, emulator, sync) as (outbox, sink):
        for i in range(150):
            device = f"d{i % 3}"
            await outbox.put(reading(device, i // 3, 60 + i % 40, START + i))
        await outbox.flush()
        await asyncio.sleep(0.5)
        assert state.uploads == 0  # the batch is not due yet
        await wait_for(lambda: sum(len(v) for v in state.records.values()) == 150)
    assert state.uploads == 3  # one request per device: the fewest the API allows
    assert dict(state.records_by_type) == {"batch/incremental": 150}
    for d in range(3):
        expected = [60 + i % 40 for i in range(d, 150, 3)]
        assert [r["heart_rate"] for r in state.records[f"d{d}"]] == expected
    assert sum(state.duplicates.values()) == 0
    assert sink.statistics().records_uploaded == 150


async def test_sync_now_then_full_resend_leaves_the_backlog_alone(
    tmp_path: Path, emulator: TestServer
) -> None:
    """Test `wgw sync` drains now (batch mode, a day-long interval), then `--full` resends."""
    state = emulator.app[STATE_KEY]
    sync = SyncConfig(
        mode="batch",
        batch_interval_s=86_400,
        min_request_interval_s=0,
        record_interval_s=10,
        record_grace_s=0,
    )
    async with running(tmp_path, emulator, sync) as (outbox, sink):
        for i in range(120):  # 2 minutes at 1 Hz: 12 closed 10 s intervals
            await outbox.put(reading("w", i, 60 + i % 7, START + i))
        await outbox.flush()
        progress = await sink.request_sync()
        assert progress.kind == "incremental"
        assert progress.total_rows == 120
        await wait_for(lambda: progress.state == "done")
        assert progress.done_rows == 120
        assert progress.records == 12
        assert len(state.records["w"]) == 12
        await outbox.flush()
        assert (await outbox.statistics()).backlog[health_upload.SINK].pending == 0

        full = await sink.request_sync(full=True)
        assert full is not progress
        assert full.total_rows == 120
        await wait_for(lambda: full.state == "done")
        await outbox.put(reading("w", 999, 70, time.time() - 60))  # new data after the resend
        await outbox.flush()
        stats = await outbox.statistics()
    assert full.done_rows == 120
    assert full.records == 12
    assert dict(state.records_by_type) == {"batch/incremental": 12, "batch/full": 12}
    assert state.duplicates["w"] == 12  # the server saw every full record before
    assert len(state.records["w"]) == 12
    assert stats.backlog[health_upload.SINK].pending == 1  # the new reading still waits


async def test_the_byte_cap_splits_a_request_without_losing_or_repeating_a_record(
    tmp_path: Path, emulator: TestServer
) -> None:
    """Test a 4 KB body cap: several requests, every record once, in order."""
    state = emulator.app[STATE_KEY]
    sync = SyncConfig(
        mode="batch",
        batch_interval_s=0.1,
        min_request_interval_s=0,
        record_interval_s=0,
        batch_max_bytes=4096,
    )
    async with running(tmp_path, emulator, sync) as (outbox, _):
        for i in range(100):
            await outbox.put(reading("w", i, 50 + i % 50, START + i))
        await wait_for(lambda: len(state.records.get("w", [])) == 100)
    assert [r["heart_rate"] for r in state.records["w"]] == [50 + i % 50 for i in range(100)]
    assert state.uploads >= 100 * 180 // 4096  # each record is ~180 bytes of JSON
    assert state.duplicates["w"] == 0


async def test_drain_estimate_counts_requests_at_the_configured_pace(tmp_path: Path) -> None:
    """Test the status figure: one device per request, batch_max_records each, paced."""
    sync = SyncConfig(min_request_interval_s=10, batch_max_records=100)
    tcm = TcmConfig(base_url="http://127.0.0.1:9/api/v1", api_key=SecretStr("k"))
    async with (
        Outbox(tmp_path / "o.sqlite", {health_upload.SINK: health_upload.wants}) as outbox,
        aiohttp.ClientSession() as session,
    ):
        sink = health_upload.HealthUploadSink(outbox, TcmClient(session, tcm), sync)
        assert sink.drain_eta_s(0, 3) == 0.0
        assert sink.drain_eta_s(1, 3) == 0.0  # one request, now
        assert sink.drain_eta_s(50, 3) == 20.0  # three devices: three requests
        assert sink.drain_eta_s(1000, 3) == 90.0  # ten full requests
