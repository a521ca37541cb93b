"""`wgw emulator` as a process, and the clients over verified TLS with a custom CA bundle."""

from __future__ import annotations

import asyncio
import json
import ssl
import sys
from typing import TYPE_CHECKING

import aiohttp
import pytest
import trustme
from aiohttp import web
from pydantic import SecretStr

from gateway.clients.tcm import TcmClient
from gateway.config import TcmConfig
from gateway.emulator.app import EmulatorConfig, emulator_app
from gateway.errors import RetryableSinkError
from tests.support import free_port

if TYPE_CHECKING:
    from pathlib import Path

RECORD: dict[str, object] = {"timestamp": "2026-11-22T10:00:00.000Z", "heart_rate": 61}


async def test_wgw_emulator_prints_credentials_and_applies_flags() -> None:
    """Test the process: where it listens, the demo account, the plan, initial faults."""
    port = free_port()
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "emulator",
        "--port",
        str(port),
        "--plan",
        "pro",
        "--faults",
        json.dumps({"fail_next": [503]}),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        lines = [(await asyncio.wait_for(child.stdout.readline(), 20)).decode() for _ in range(4)]
        assert f"emulator listening on http://127.0.0.1:{port} (plan pro)" in lines[0]
        assert "demo@example.com / demo-password" in lines[1]
        async with aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{port}/api/v1/auth/login"
            body = {"email": "demo@example.com", "password": "demo-password"}
            async with session.post(url, json=body) as first:
                assert first.status == 503  # the fault from --faults
            async with session.post(url, json=body) as second:
                assert second.status == 200
                assert second.headers["X-RateLimit-Limit"] == "300"
    finally:
        child.terminate()
        await child.wait()


async def test_tls_is_verified_and_a_custom_ca_bundle_is_honoured(tmp_path: Path) -> None:
    """Test the emulator over HTTPS: refused without the CA, accepted with ca_bundle."""
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    runner = web.AppRunner(emulator_app(EmulatorConfig(plan="enterprise")))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=server_context).start()
    try:
        base = f"https://127.0.0.1:{port}/api/v1"
        async with aiohttp.ClientSession() as session:
            untrusted = TcmConfig(base_url=base, api_key=SecretStr("tcm-demo-key"))
            with pytest.raises(RetryableSinkError, match="Certificate"):
                await TcmClient(session, untrusted).upload_health(
                    "w", [RECORD], data_type="realtime", sync_type="incremental"
                )
            trusted = TcmConfig(base_url=base, api_key=SecretStr("tcm-demo-key"), ca_bundle=bundle)
            result = await TcmClient(session, trusted).upload_health(
                "w", [RECORD], data_type="realtime", sync_type="incremental"
            )
        assert result.accepted == 1
    finally:
        await runner.cleanup()


async def test_added_latency_is_applied() -> None:
    """Test that latency_s delays answers (measured, not slept on)."""
    runner = web.AppRunner(
        emulator_app(EmulatorConfig(plan="enterprise", faults={"latency_s": 0.3}))
    )
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        async with aiohttp.ClientSession() as session:
            cfg = TcmConfig(
                base_url=f"http://127.0.0.1:{port}/api/v1", api_key=SecretStr("tcm-demo-key")
            )
            await TcmClient(session, cfg).upload_health(
                "w", [RECORD], data_type="realtime", sync_type="incremental"
            )
        assert loop.time() - started >= 0.3
    finally:
        await runner.cleanup()


async def test_slow_bodies_hit_the_read_timeout_and_are_retryable() -> None:
    """Test an answer trickling out over 1 s against a 0.3 s read timeout: a retryable failure."""
    runner = web.AppRunner(
        emulator_app(EmulatorConfig(plan="enterprise", faults={"slow_body_s": 1.0}))
    )
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        base = f"http://127.0.0.1:{port}/api/v1"
        async with aiohttp.ClientSession() as session:
            impatient = TcmConfig(base_url=base, api_key=SecretStr("tcm-demo-key"), timeout_s=0.3)
            with pytest.raises(RetryableSinkError, match="Timeout"):
                await TcmClient(session, impatient).upload_health(
                    "w", [RECORD], data_type="realtime", sync_type="incremental"
                )
            patient = TcmConfig(base_url=base, api_key=SecretStr("tcm-demo-key"), timeout_s=5.0)
            again = {**RECORD, "timestamp": "2026-11-22T10:00:01.000Z"}
            result = await TcmClient(session, patient).upload_health(
                "w", [again], data_type="realtime", sync_type="incremental"
            )
        assert result.accepted == 1
    finally:
        await runner.cleanup()
