"""API.md B's error table end to end: what the upload sink retries, how often, what it parks."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
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

SYNC = SyncConfig(min_request_interval_s=0, retry_min_s=0.05, retry_max_s=0.2, record_interval_s=0)


def reading(seq: int) -> OutboxRecord:
    return OutboxRecord(
        "vital",
        "w1",
        "heart_rate",
        seq,
        1.8e9 + seq,
        json.dumps({"heart_rate_bpm": 60 + seq}).encode(),
    )


async def run_sink(
    tmp_path: Path, emulator: TestServer, faults: dict[str, Any], *, login: bool = False
) -> tuple[health_upload.HealthUploadStatistics, int]:
    """Three readings through the sink with ``faults`` armed; until all are delivered or parked."""
    state = emulator.app[STATE_KEY]
    base = {"base_url": str(emulator.make_url("/api/v1")), "plan": "enterprise"}
    auth = (
        {"email": "demo@example.com", "password": SecretStr("demo-password")}
        if login
        else {"api_key": SecretStr("tcm-demo-key")}
    )
    tcm = TcmConfig.model_validate({**base, **auth})
    async with (
        Outbox(
            tmp_path / "o.sqlite", {health_upload.SINK: health_upload.wants}, flush_interval_ms=5
        ) as outbox,
        aiohttp.ClientSession() as session,
    ):
        client = TcmClient(session, tcm)
        if login:  # log in first, so that the injected 401 hits an upload
            await client.upload_health(
                "warmup",
                [{"timestamp": "2026-01-01T00:00:00Z"}],
                data_type="realtime",
                sync_type="incremental",
            )
        sink = health_upload.HealthUploadSink(outbox, client, SYNC)
        assert state.faults.update(faults) is None
        for i in range(3):
            await outbox.put(reading(i))
        task = asyncio.create_task(sink.run())
        await wait_for(  # every row acked (delivered) or parked, by the sink's own count
            lambda: (
                sum(sink.statistics().uploaded_by_device.values()) + sink.statistics().dead_lettered
                == 3
            )
        )
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await outbox.flush()
        backlog = (await outbox.statistics()).backlog[health_upload.SINK]
    assert backlog.pending == 0
    return sink.statistics(), backlog.dead_letters


@pytest.mark.parametrize(
    ("faults", "retries", "dead"),
    [
        ({"fail_next": [503]}, 1, 0),  # SERVICE_UNAVAILABLE: backoff, retry
        ({"fail_next": [500]}, 1, 0),  # DIAGNOSIS_MODEL_ERROR: backoff, retry
        ({"fail_next": [429]}, 1, 0),  # RATE_LIMIT_EXCEEDED: wait Retry-After, retry
        ({"fail_next": [400]}, 0, 3),  # INVALID_PARAMETER: dead letter
        ({"fail_next": [403]}, 0, 3),  # INSUFFICIENT_PERMISSIONS: dead letter
        ({"fail_next": [422]}, 0, 3),  # IMAGE_PROCESSING_ERROR: dead letter
        ({"outage_s": 0.3, "outage_mode": "drop"}, 1, 0),  # network error: keep, retry
    ],
    ids=["503", "500", "429", "400", "403", "422", "network"],
)
async def test_each_error_is_retried_or_parked_per_api_md(
    tmp_path: Path, emulator: TestServer, faults: dict[str, Any], retries: int, dead: int
) -> None:
    """Test the decision for each code: retried (delivered once) or dead-lettered (counted)."""
    stats, dead_letters = await run_sink(tmp_path, emulator, faults)
    state = emulator.app[STATE_KEY]
    assert stats.retries >= retries if retries else stats.retries == 0
    assert dead_letters == dead == stats.dead_lettered
    assert len(state.records.get("w1", [])) == 3 - dead
    assert state.duplicates.get("w1", 0) == 0


async def test_invalid_token_logs_in_again_once_and_retries(
    tmp_path: Path, emulator: TestServer
) -> None:
    """Test 401 INVALID_TOKEN: one new login, the same request again, nothing parked."""
    stats, dead_letters = await run_sink(tmp_path, emulator, {"fail_next": [401]}, login=True)
    state = emulator.app[STATE_KEY]
    assert (stats.retries, dead_letters) == (0, 0)
    assert state.logins + state.refreshes == 2
    assert len(state.records["w1"]) == 3


async def test_an_answer_cut_off_mid_body_is_resent_and_counted_as_duplicates(
    tmp_path: Path, emulator: TestServer
) -> None:
    """Test a connection reset after the server stored the batch: re-sent once, 3 duplicates."""
    stats, _ = await run_sink(tmp_path, emulator, {"reset_next": 1})
    state = emulator.app[STATE_KEY]
    assert stats.retries == 1
    assert len(state.records["w1"]) == 3
    assert state.duplicates["w1"] == 3  # exactly the batch that was in flight


async def test_a_429_storm_is_ridden_out_without_losing_a_record(
    tmp_path: Path, emulator: TestServer
) -> None:
    """Test three 429s in a row: each waits its Retry-After, then everything arrives once."""
    stats, dead_letters = await run_sink(tmp_path, emulator, {"fail_next": [429, 429, 429]})
    state = emulator.app[STATE_KEY]
    assert stats.retries == 3
    assert dead_letters == 0
    assert [r["heart_rate"] for r in state.records["w1"]] == [60, 61, 62]
    assert state.duplicates["w1"] == 0
