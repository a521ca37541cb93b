"""``wgw session start|stop``, ``wgw mark``, ``wgw assign``: told to the running daemon.

Over its local API; prints one JSON line of what was stored, or one error line.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import TYPE_CHECKING, Any

from gateway import daemon_api

if TYPE_CHECKING:
    from gateway.config import HttpConfig


async def _post(api: daemon_api.Endpoint, path: str, body: dict[str, Any]) -> int:
    answered = await daemon_api.request(api, "POST", path, body)
    if answered is None:
        return 1
    status, answer = answered
    if status != 201:
        print(f"error: {answer.get('error', f'HTTP {status}')}", file=sys.stderr)
        return 1
    print(json.dumps(answer))
    return 0


def post(http: HttpConfig, path: str, body: dict[str, Any]) -> int:
    """POST ``body`` to the daemon's ``path``; the exit status."""
    api = daemon_api.endpoint_of(http)
    if api is None:
        return 1
    return asyncio.run(_post(api, path, body))
