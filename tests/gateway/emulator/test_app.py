"""The emulator over real HTTP: login, upload validation, the error envelope, de-duplication."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import aiohttp

if TYPE_CHECKING:
    from aiohttp.test_utils import TestServer

RECORD = {"timestamp": "2026-11-22T10:00:00.000Z", "heart_rate": 61}


async def post(
    server: TestServer, path: str, body: Any, token: str | None = None
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        aiohttp.ClientSession() as session,
        session.post(server.make_url(path), json=body, headers=headers) as response,
    ):
        return response.status, await response.json()


async def test_login_then_upload_counts_duplicates(emulator: TestServer) -> None:
    """Test that a logged-in upload is accepted and a re-sent record is counted as duplicate."""
    status, login = await post(
        emulator, "/api/v1/auth/login", {"email": "demo@example.com", "password": "demo-password"}
    )
    assert status == 200 and login["token_type"] == "Bearer" and login["expires_in"] > 0
    body = {
        "data_type": "realtime",
        "sync_type": "incremental",
        "device_id": "w1",
        "records": [RECORD],
    }
    status, first = await post(emulator, "/api/v1/health/upload", body, login["access_token"])
    assert status == 200
    assert (first["success"], first["accepted"], first["duplicates"]) == (True, 1, 0)
    status, again = await post(emulator, "/api/v1/health/upload", body, "tcm-demo-key")
    assert (again["accepted"], again["duplicates"]) == (0, 1)


async def test_errors_use_the_envelope_with_field_details(emulator: TestServer) -> None:
    """Test that 401 and 400 answers carry code, details.field and a request id."""
    status, denied = await post(emulator, "/api/v1/health/upload", {}, "wrong-token")
    assert status == 401
    assert denied["success"] is False and denied["error"]["code"] == "INVALID_TOKEN"
    assert denied["error"]["request_id"].startswith("req_")

    body = {"data_type": "sometimes", "device_id": "w1", "records": [RECORD]}
    status, invalid = await post(emulator, "/api/v1/health/upload", body, "tcm-demo-key")
    assert status == 400
    assert invalid["error"]["code"] == "INVALID_PARAMETER"
    assert invalid["error"]["details"]["field"] == "data_type"

    body = {"data_type": "batch", "device_id": "w1", "records": [{"timestamp": "yesterday"}]}
    status, invalid = await post(emulator, "/api/v1/health/upload", body, "tcm-demo-key")
    assert status == 400
    assert invalid["error"]["details"]["field"] == "records[0].timestamp"


async def test_injected_faults_answer_in_order(emulator: TestServer) -> None:
    """Test that /_emulator/faults makes the next requests fail with the given statuses."""
    await post(emulator, "/_emulator/faults", {"fail_next": [503, 429]})
    body = {"data_type": "realtime", "device_id": "w1", "records": [RECORD]}
    first, _ = await post(emulator, "/api/v1/health/upload", body, "tcm-demo-key")
    second, _ = await post(emulator, "/api/v1/health/upload", body, "tcm-demo-key")
    third, ok = await post(emulator, "/api/v1/health/upload", body, "tcm-demo-key")
    assert (first, second, third) == (503, 429, 200)
    assert ok["accepted"] == 1
