"""Plan quotas: the emulator enforces them, the client stays inside them and remembers usage."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import aiohttp
from aiohttp.test_utils import TestServer
from pydantic import SecretStr

from gateway.clients.limiter import ClientRateLimiter
from gateway.clients.tcm import TcmClient
from gateway.config import TcmConfig
from gateway.emulator.app import STATE_KEY, EmulatorConfig, emulator_app
from gateway.rate_limits import PLANS

if TYPE_CHECKING:
    from pathlib import Path

SCALE = 0.02  # a "minute" of 1.2 s
BODY = {
    "data_type": "realtime",
    "device_id": "w",
    "records": [{"timestamp": "2026-01-01T00:00:00Z"}],
}


async def free_plan_emulator(scale: float = SCALE) -> TestServer:
    server = TestServer(
        emulator_app(EmulatorConfig(plan="free", window_scale=scale)), host="127.0.0.1"
    )
    await server.start_server()
    return server


async def test_emulator_answers_429_past_the_minute_quota_with_headers() -> None:
    """Test the 11th request in a free-plan minute: 429, Retry-After, X-RateLimit-*."""
    server = await free_plan_emulator(scale=1.0)
    try:
        async with aiohttp.ClientSession() as session:
            headers = {"Authorization": "Bearer tcm-demo-key"}
            statuses, remaining, resets = [], [], set()
            for _ in range(11):
                async with session.post(
                    server.make_url("/api/v1/health/upload"), json=BODY, headers=headers
                ) as r:
                    statuses.append(r.status)
                    remaining.append(int(r.headers["X-RateLimit-Remaining"]))
                    resets.add(r.headers["X-RateLimit-Reset"])
                    retry_after = r.headers.get("Retry-After")
        if len(resets) > 1:  # the wall-clock minute turned during the burst: nothing to judge
            return
        assert statuses == [200] * 10 + [429]
        assert remaining == [9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 0]
        assert retry_after is not None
        assert 0 < int(retry_after) <= 60
    finally:
        await server.close()


async def test_client_limiter_never_exceeds_the_plan_and_remembers_usage(tmp_path: Path) -> None:
    """Test 25 uploads on the free plan: no 429, the client waited, and a restart resumes counts."""
    server = await free_plan_emulator()
    state = tmp_path / "limit.json"
    try:
        config = TcmConfig(
            base_url=str(server.make_url("/api/v1")), api_key=SecretStr("tcm-demo-key")
        )
        async with aiohttp.ClientSession() as session:
            limiter = ClientRateLimiter(PLANS["free"], state_path=state, scale=SCALE)
            client = TcmClient(session, config, limiter)
            for i in range(25):
                body_time = f"2026-01-01T00:00:{i:02d}Z"
                await client.upload_health(
                    "w", [{"timestamp": body_time}], data_type="realtime", sync_type="incremental"
                )
            assert limiter.waited_s > 0
            assert server.app[STATE_KEY].limited == 0
            saved = json.loads(state.read_text())
            assert sum(saved["counts"][2:3]) == 25  # the day's count
            again = ClientRateLimiter(PLANS["free"], state_path=state, scale=SCALE)
            assert again.remaining()[1] <= PLANS["free"][0]
    finally:
        await server.close()


async def test_server_headers_correct_a_client_that_forgot() -> None:
    """Test that a fresh limiter adopts the server's count from X-RateLimit-* headers."""
    limiter = ClientRateLimiter(PLANS["free"], scale=SCALE)
    limit, _, reset = limiter.remaining()
    limiter.observe(
        {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(reset),
        }
    )
    assert limiter.remaining()[1] == 0
    await limiter.acquire()  # must wait for the next scaled minute
    assert limiter.waited_s > 0
