"""TcmClient against the emulator: login, re-login on 401, errors classified per API.md."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import aiohttp
import pytest
from pydantic import SecretStr

from gateway.clients.tcm import TcmClient
from gateway.config import TcmConfig
from gateway.emulator.app import STATE_KEY
from gateway.errors import AuthError, PermanentSinkError, RetryableSinkError

if TYPE_CHECKING:
    from aiohttp.test_utils import TestServer

RECORD: dict[str, object] = {"timestamp": "2026-11-22T10:00:00.000Z", "heart_rate": 61}


def config(server: TestServer, **kw: object) -> TcmConfig:
    base = {
        "base_url": str(server.make_url("/api/v1")),
        "email": "demo@example.com",
        "password": SecretStr("demo-password"),
    }
    return TcmConfig.model_validate({**base, **kw})


async def test_logs_in_once_and_logs_in_again_when_the_token_is_refused(
    emulator: TestServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Test that an expired token is replaced by one fresh login and the upload succeeds."""
    caplog.set_level(logging.DEBUG)
    async with aiohttp.ClientSession() as session:
        client = TcmClient(session, config(emulator))
        first = await client.upload_health(
            "w1", [RECORD], data_type="realtime", sync_type="incremental"
        )
        assert first.accepted == 1
        emulator.app[STATE_KEY].tokens.clear()  # every issued token expires
        second = await client.upload_health(
            "w1",
            [{**RECORD, "timestamp": "2026-11-22T10:00:01.000Z"}],
            data_type="realtime",
            sync_type="incremental",
        )
        assert second.accepted == 1
    assert "demo-password" not in caplog.text
    assert not any("at_" in r.getMessage() for r in caplog.records)


async def test_wrong_password_is_an_auth_error(emulator: TestServer) -> None:
    """Test that refused credentials raise AuthError without the password in it."""
    async with aiohttp.ClientSession() as session:
        client = TcmClient(session, config(emulator, password=SecretStr("wrong-pass-xyz")))
        with pytest.raises(AuthError) as caught:
            await client.upload_health(
                "w1", [RECORD], data_type="realtime", sync_type="incremental"
            )
    assert "wrong-pass-xyz" not in str(caught.value) and "wrong-pass-xyz" not in repr(client)


async def test_errors_are_classified(emulator: TestServer) -> None:
    """Test 503 and 429 (with Retry-After) as retryable, 400 as permanent with the request id."""
    async with aiohttp.ClientSession() as session:
        client = TcmClient(session, config(emulator, api_key=SecretStr("tcm-demo-key")))
        emulator.app[STATE_KEY].fail_next.extend([503, 429])
        with pytest.raises(RetryableSinkError) as unavailable:
            await client.upload_health(
                "w1", [RECORD], data_type="realtime", sync_type="incremental"
            )
        assert unavailable.value.code == "SERVICE_UNAVAILABLE"
        with pytest.raises(RetryableSinkError) as limited:
            await client.upload_health(
                "w1", [RECORD], data_type="realtime", sync_type="incremental"
            )
        assert limited.value.retry_after_s == 1.0
        with pytest.raises(PermanentSinkError) as invalid:
            await client.upload_health(
                "w1", [{"timestamp": "x"}], data_type="realtime", sync_type="full"
            )
        assert invalid.value.code == "INVALID_PARAMETER"
        assert invalid.value.request_id is not None and invalid.value.request_id.startswith("req_")
        assert invalid.value.details["field"] == "records[0].timestamp"


async def test_connection_refused_is_retryable() -> None:
    """Test that an unreachable server is a retryable error (the data stays queued)."""
    from tests.support import free_port  # noqa: PLC0415

    cfg = TcmConfig(base_url=f"http://127.0.0.1:{free_port()}/api/v1", api_key=SecretStr("k"))
    async with aiohttp.ClientSession() as session:
        with pytest.raises(RetryableSinkError):
            await TcmClient(session, cfg).upload_health(
                "w1", [RECORD], data_type="realtime", sync_type="incremental"
            )
