"""Secrets never reach a log line, an exception message, a repr or the status output."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import aiohttp
from pydantic import SecretStr

from gateway.clients.heartvoice import HeartVoiceClient
from gateway.clients.tcm import TcmClient
from gateway.config import HeartVoiceConfig, Settings, TcmConfig
from gateway.emulator.app import STATE_KEY
from gateway.errors import SinkError

if TYPE_CHECKING:
    import pytest
    from aiohttp.test_utils import TestServer

SECRETS = ("pw-SECRET-4711", "hv-KEY-SECRET-0815", "mqtt-PW-SECRET-42")


async def test_no_secret_in_logs_errors_or_reprs(
    emulator: TestServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Test every credential path at DEBUG: login refused, re-login, key refused, reprs."""
    caplog.set_level(logging.DEBUG)
    base = str(emulator.make_url("/api/v1"))
    errors: list[str] = []
    record = {"timestamp": "2026-11-22T10:00:00.000Z", "heart_rate": 60}
    async with aiohttp.ClientSession() as session:
        wrong = TcmClient(
            session,
            TcmConfig(base_url=base, email="demo@example.com", password=SecretStr(SECRETS[0])),
        )
        try:
            await wrong.upload_health("w", [record], data_type="realtime", sync_type="incremental")
        except SinkError as exc:
            errors += [str(exc), repr(exc)]
        right = TcmClient(
            session,
            TcmConfig(base_url=base, email="demo@example.com", password=SecretStr("demo-password")),
        )
        await right.upload_health("w", [record], data_type="realtime", sync_type="incremental")
        emulator.app[STATE_KEY].tokens.clear()  # forces a refresh with the refresh token
        await right.upload_health(
            "w",
            [{**record, "timestamp": "2026-11-22T10:00:01.000Z"}],
            data_type="realtime",
            sync_type="incremental",
        )
        hv = HeartVoiceClient(
            session,
            HeartVoiceConfig(
                base_url=str(emulator.make_url("")).rstrip("/"), api_key=SecretStr(SECRETS[1])
            ),
        )
        try:
            await hv.ppg_to_ecg([1.0] * 1000, 500)
        except SinkError as exc:
            errors += [str(exc), repr(exc)]
        settings = Settings.model_validate(
            {
                "mqtt": {"password": SECRETS[2]},
                "cloud": {
                    "tcm": {"email": "a@b.c", "password": SECRETS[0]},
                    "heartvoice": {"api_key": SECRETS[1]},
                },
            }
        )
        texts = [
            caplog.text,
            *errors,
            repr(settings),
            str(settings),
            repr(wrong),
            repr(hv),
            settings.model_dump_json(),
        ]
    assert len(errors) == 4
    for secret in (*SECRETS, "demo-password"):
        for text in texts:
            assert secret not in text
    # access tokens are secrets too
    for token in emulator.app[STATE_KEY].tokens:
        assert token not in caplog.text
