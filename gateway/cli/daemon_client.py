"""The command line's side of the daemon's local API: its address and token, one request, errors.

Every command reports the same way that config switched the API off or that no daemon runs.
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import aiohttp

if TYPE_CHECKING:
    from gateway.config import HttpConfig

TIMEOUT: Final = aiohttp.ClientTimeout(total=10)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """The daemon's API as the command line reaches it."""

    url: str
    token: str | None = None

    def session(self) -> aiohttp.ClientSession:
        """A session that sends the token, if config has one."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else None
        return aiohttp.ClientSession(timeout=TIMEOUT, headers=headers)


def endpoint_of(http: HttpConfig) -> Endpoint | None:
    """Where the daemon's API answers (a wildcard bind is reached on loopback).

    None, said on stderr, when config switches the API off.
    """
    if not http.enabled:
        print("error: http.enabled is false: this command needs the daemon's API", file=sys.stderr)
        return None
    host = "127.0.0.1" if http.host in ("0.0.0.0", "::", "") else http.host  # noqa: S104
    token = http.token.get_secret_value() if http.token else None
    return Endpoint(f"http://{host}:{http.port}", token)


def say_no_daemon(url: str, exc: BaseException) -> None:
    """One line on stderr: nothing answered at ``url``."""
    print(f"error: no daemon answers at {url} ({exc}); is `wgw run` running?", file=sys.stderr)


async def request(
    api: Endpoint, method: str, path: str, body: dict[str, Any] | None = None
) -> tuple[int, dict[str, Any]] | None:
    """One request: (status, JSON answer), or None (said on stderr) when nothing answers."""
    try:
        async with (
            api.session() as session,
            session.request(method, f"{api.url}{path}", json=body) as response,
        ):
            answer: dict[str, Any] = await response.json(content_type=None)
            return response.status, answer
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        say_no_daemon(api.url, exc)
        return None


def post(http: HttpConfig, path: str, body: dict[str, Any]) -> int:
    """POST ``body`` to the daemon's ``path``: one JSON line of what it stored; the exit status."""
    api = endpoint_of(http)
    if api is None:
        return 1
    answered = asyncio.run(request(api, "POST", path, body))
    if answered is None:
        return 1
    status, answer = answered
    if status != 201:
        print(f"error: {answer.get('error', f'HTTP {status}')}", file=sys.stderr)
        return 1
    print(json.dumps(answer))
    return 0
