"""The local status API on 127.0.0.1: health, status, and the sync control of ``wgw sync``.

``GET /healthz``, ``GET /api/status`` (JSON); ``POST /api/sync`` (``{"full": bool}``) starts a
sync now, ``GET /api/sync`` follows its progress.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Final, Protocol

from aiohttp import web

if TYPE_CHECKING:
    from contextlib import AsyncExitStack

    from gateway.daemon import DaemonStatistics
    from gateway.sinks.health_upload import SyncProgress


class _HasStatistics(Protocol):
    async def statistics(self) -> DaemonStatistics: ...

    async def request_sync(self, *, full: bool) -> SyncProgress: ...

    def sync_progress(self) -> SyncProgress | None: ...


_SOURCE_KEY: Final = web.AppKey("source", _HasStatistics)


async def serve_status(stack: AsyncExitStack, source: _HasStatistics, host: str, port: int) -> str:
    """Serve until ``stack`` closes; return the base URL (port 0 picks a free port)."""
    app = web.Application()
    app[_SOURCE_KEY] = source
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/api/status", _status)
    app.router.add_post("/api/sync", _start_sync)
    app.router.add_get("/api/sync", _sync_progress)
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


async def _start_sync(request: web.Request) -> web.Response:
    try:
        body = await request.json() if request.can_read_body else {}
    except ValueError:
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("full", False), bool):
        return web.json_response({"error": 'expected {"full": true|false}'}, status=400)
    progress = await request.app[_SOURCE_KEY].request_sync(full=body.get("full", False))
    return web.json_response(dataclasses.asdict(progress), status=202)


async def _sync_progress(request: web.Request) -> web.Response:
    progress = request.app[_SOURCE_KEY].sync_progress()
    if progress is None:
        return web.json_response({"error": "no sync requested since start"}, status=404)
    return web.json_response(dataclasses.asdict(progress))
