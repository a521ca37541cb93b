"""TcmClient against the emulator: login, re-login on 401, errors classified per API.md."""

from __future__ import annotations

import asyncio
import logging
import stat
from typing import TYPE_CHECKING

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from pydantic import SecretStr

from gateway.clients.tcm import TcmClient
from gateway.config import TcmConfig
from gateway.emulator.app import STATE_KEY, EmulatorConfig, emulator_app
from gateway.errors import AuthError, PermanentSinkError, RetryableSinkError

if TYPE_CHECKING:
    from pathlib import Path

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
        emulator.app[STATE_KEY].faults.fail_next.extend([503, 429])
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


async def test_tokens_are_cached_0600_and_refreshed_before_expiry(tmp_path: Path) -> None:
    """Test a restart that reuses the cached token, and a short-lived token refreshed in time."""
    server = TestServer(
        emulator_app(EmulatorConfig(token_ttl_s=2.0, plan="enterprise")), host="127.0.0.1"
    )
    await server.start_server()
    cache = tmp_path / "token.json"
    state = server.app[STATE_KEY]
    try:
        cfg = config(server)
        async with aiohttp.ClientSession() as session:
            first = TcmClient(session, cfg, token_cache=cache)
            await first.upload_health("w1", [RECORD], data_type="realtime", sync_type="incremental")
            assert stat.S_IMODE(cache.stat().st_mode) == 0o600
            assert "demo-password" not in cache.read_text()
            restarted = TcmClient(session, cfg, token_cache=cache)  # a new process, same cache
            for i in range(1, 6):
                record = {**RECORD, "timestamp": f"2026-11-22T10:00:{i:02d}.000Z"}
                await restarted.upload_health(
                    "w1", [record], data_type="realtime", sync_type="incremental"
                )
                await asyncio.sleep(0.5)  # 2.5 s in all: past the first token's expiry
        assert state.logins == 1
        assert state.refreshes >= 1
        assert len(state.records["w1"]) == 6
        assert state.requests - state.logins - state.refreshes == 6  # no request was refused
    finally:
        await server.close()


PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


async def test_tongue_then_diagnosis(emulator: TestServer, tmp_path: Path) -> None:
    """Test a multipart tongue analysis and a diagnosis that cites it: schema-complete answers."""
    image = tmp_path / "tongue.png"
    image.write_bytes(PNG)
    async with aiohttp.ClientSession() as session:
        client = TcmClient(session, config(emulator, api_key=SecretStr("tcm-demo-key")))
        tongue = await client.analyze_tongue(image, analysis_type="detailed")
        again = await client.analyze_tongue(image, analysis_type="detailed")
        vitals = {
            "heart_rate": 96,
            "blood_pressure": {"systolic": 128, "diastolic": 84},
            "blood_oxygen": 93,
            "temperature": 37.2,
            "recorded_at": "2026-11-22T10:00:00Z",
        }
        diagnosis = await client.diagnose(
            vitals, ["fatigue", "palpitations"], tongue_analysis_id=tongue["analysis_id"]
        )
    assert tongue == again  # deterministic
    assert set(tongue["analysis"]) == {
        "tongue_color",
        "coating",
        "tongue_shape",
        "sublingual_veins",
    }
    assert len(tongue["meridian_correlation"]) == 3
    assert {m["meridian"] for m in diagnosis["meridian_status"]} >= {"heart", "lung", "liver"}
    assert len(diagnosis["meridian_status"]) == 12
    assert diagnosis["treatments"] is not None and diagnosis["prognosis"] is not None
    assert diagnosis["tongue_analysis_id"] == tongue["analysis_id"]


async def test_images_are_refused_before_sending(emulator: TestServer, tmp_path: Path) -> None:
    """Test that a GIF or an 11 MB file never reaches the server, and the server's own checks."""
    gif, big = tmp_path / "t.gif", tmp_path / "big.png"
    gif.write_bytes(b"GIF89a" + bytes(100))
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(11 * 1024 * 1024))
    state = emulator.app[STATE_KEY]
    async with aiohttp.ClientSession() as session:
        client = TcmClient(session, config(emulator, api_key=SecretStr("tcm-demo-key")))
        before = state.requests
        for path, code in ((gif, "IMAGE_FORMAT"), (big, "IMAGE_TOO_LARGE")):
            with pytest.raises(PermanentSinkError) as refused:
                await client.analyze_tongue(path)
            assert refused.value.code == code
        assert state.requests == before
        with pytest.raises(PermanentSinkError) as unknown:
            await client.diagnose({"heart_rate": 70}, ["cough"], tongue_analysis_id="tg_nope")
    assert unknown.value.code == "INVALID_PARAMETER"
    assert unknown.value.details["field"] == "tongue_analysis_id"
