"""The local status API: ``GET /healthz`` and ``GET /api/status`` (JSON), on 127.0.0.1."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Final, Protocol

from aiohttp import web

if TYPE_CHECKING:
    from contextlib import AsyncExitStack

    from gateway.daemon import DaemonStatistics


class _HasStatistics(Protocol):
    async def statistics(self) -> DaemonStatistics: ...


_SOURCE_KEY: Final = web.AppKey("source", _HasStatistics)


async def serve_status(stack: AsyncExitStack, source: _HasStatistics, host: str, port: int) -> str:
    """Serve until ``stack`` closes; return the base URL (port 0 picks a free port)."""
    app = web.Application()
    app[_SOURCE_KEY] = source
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/api/status", _status)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    stack.push_async_callback(runner.cleanup)
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound_port = runner.addresses[0][1]
    return f"http://{host}:{bound_port}"


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _status(request: web.Request) -> web.Response:
    stats = await request.app[_SOURCE_KEY].statistics()
    return web.json_response(dataclasses.asdict(stats))
