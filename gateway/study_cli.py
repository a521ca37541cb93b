"""``wgw session start|stop``, ``wgw mark``, ``wgw assign``: told to the running daemon.

Over its local API; prints one JSON line of what was stored, or one error line.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import TYPE_CHECKING, Any

import aiohttp

from gateway.sync_cli import base_url

if TYPE_CHECKING:
    from gateway.config import HttpConfig


async def _post(url: str, body: dict[str, Any]) -> int:
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
            session.post(url, json=body) as response,
        ):
            answer: dict[str, Any] = await response.json()
            status = response.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        print(f"error: no daemon answers at {url} ({exc}); is `wgw run` running?", file=sys.stderr)
        return 1
    if status != 201:
        print(f"error: {answer.get('error', f'HTTP {status}')}", file=sys.stderr)
        return 1
    print(json.dumps(answer))
    return 0


def post(http: HttpConfig, path: str, body: dict[str, Any]) -> int:
    """POST ``body`` to the daemon's ``path``; the exit status."""
    if not http.enabled:
        print("error: http.enabled is false: the daemon is told over it", file=sys.stderr)
        return 1
    return asyncio.run(_post(base_url(http) + path, body))
