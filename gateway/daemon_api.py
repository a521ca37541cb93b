"""The command line's side of the daemon's local API: its address, one request, two errors.

Every command reports the same way that config switched the API off or that no daemon runs.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, Final

import aiohttp

if TYPE_CHECKING:
    from gateway.config import HttpConfig

TIMEOUT: Final = aiohttp.ClientTimeout(total=10)


def url_of(http: HttpConfig) -> str | None:
    """Where the daemon's API answers (a wildcard bind is reached on loopback).

    None, said on stderr, when config switches the API off.
    """
    if not http.enabled:
        print("error: http.enabled is false: this command needs the daemon's API", file=sys.stderr)
        return None
    host = "127.0.0.1" if http.host in ("0.0.0.0", "::", "") else http.host  # noqa: S104
    return f"http://{host}:{http.port}"


def say_no_daemon(url: str, exc: BaseException) -> None:
    """One line on stderr: nothing answered at ``url``."""
    print(f"error: no daemon answers at {url} ({exc}); is `wgw run` running?", file=sys.stderr)


async def request(
    url: str, method: str, path: str, body: dict[str, Any] | None = None
) -> tuple[int, dict[str, Any]] | None:
    """One request: (status, JSON answer), or None (said on stderr) when nothing answers."""
    try:
        async with (
            aiohttp.ClientSession(timeout=TIMEOUT) as session,
            session.request(method, f"{url}{path}", json=body) as response,
        ):
            answer: dict[str, Any] = await response.json()
            return response.status, answer
    except (aiohttp.ClientError, TimeoutError) as exc:
        say_no_daemon(url, exc)
        return None
