"""The local status API on 127.0.0.1: live page, health, status, metrics, ``wgw sync``, study.

``GET /`` (the live page), ``GET /api/live`` (its server-sent events: waveform chunks and
vitals as they arrive), ``GET /api/sim`` (with ``ble.backend: sim``: the simulator's ground
truth, for benchmarks and tests).

``GET /healthz`` (alive), ``GET /readyz`` (sources and sinks up: 200, else 503),
``GET /metrics`` (Prometheus), ``GET /api/status``, ``/api/devices``, ``/api/queue`` (JSON).
``POST /api/sync`` (``{"full": bool}``) starts a sync now, ``GET /api/sync`` follows it.
``GET /api/study``; ``POST /api/session/start`` (``participant``, ``label``),
``/api/session/stop`` (``participant``), ``/api/mark`` (``text``, ``participant``),
``/api/assign`` (``device``, ``participant``, ``from``, ``site``, ``study``): 201 with what was
stored, 400 for a bad body, 409 when the study refuses.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import json
from importlib import resources
from typing import TYPE_CHECKING, Any, Final, Protocol

from aiohttp import web

from gateway.http import metrics
from gateway.study import StudyError, perform, vars_of

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from contextlib import AsyncExitStack

    from gateway.daemon_statistics import DaemonStatistics
    from gateway.http.live_feed import LiveFeed
    from gateway.sinks.health_upload import SyncProgress
    from gateway.study import StudyContext


class _HasStatistics(Protocol):
    async def statistics(self) -> DaemonStatistics: ...

    async def request_sync(self, *, full: bool) -> SyncProgress: ...

    def sync_progress(self) -> SyncProgress | None: ...

    def study_context(self) -> StudyContext: ...

    def is_ready(self) -> bool: ...

    def live_feed(self) -> LiveFeed: ...

    def sim_truth(self) -> list[dict[str, object]] | None: ...

    def sim_pause(self) -> bool: ...


_SOURCE_KEY: Final = web.AppKey("source", _HasStatistics)
_CLOSING_KEY: Final = web.AppKey("closing", asyncio.Event)
_KEEPALIVE_S: Final = 15.0
_POLL_S: Final = 0.5  # how soon an open event stream notices a shutdown


_COOKIE: Final = "wgw_token"
_OPEN_PATHS: Final = frozenset({"/healthz"})


def _bearer_guard(token: str) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Middleware: 401 unless the request carries ``token`` (header, or the page's cookie).

    ``GET /?token=...`` answers with the cookie and a redirect to ``/``, so a browser can open
    the live page (EventSource cannot send headers).
    """
    expected = token.encode()

    def matches(candidate: str | None) -> bool:
        return candidate is not None and hmac.compare_digest(candidate.encode(), expected)

    @web.middleware
    async def guard(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path in _OPEN_PATHS:
            return await handler(request)
        header = request.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        if (scheme.lower() == "bearer" and matches(given)) or matches(request.cookies.get(_COOKIE)):
            return await handler(request)
        if request.path == "/" and matches(request.query.get("token")):
            response = web.HTTPFound("/")
            response.set_cookie(_COOKIE, token, httponly=True, samesite="Strict")
            raise response
        return web.json_response(
            {"error": "this API asks for its bearer token (http.token)"},
            status=401,
            headers={"WWW-Authenticate": 'Bearer realm="wgw"'},
        )

    return guard


async def serve_status(
    stack: AsyncExitStack,
    source: _HasStatistics,
    host: str,
    port: int,
    *,
    token: str | None = None,
) -> str:
    """Serve until ``stack`` closes; return the base URL (port 0 picks a free port).

    With ``token``, every route but ``/healthz`` asks for it.
    """
    app = web.Application(middlewares=[_bearer_guard(token)] if token else [])
    app[_SOURCE_KEY] = source
    app[_CLOSING_KEY] = asyncio.Event()
    app.on_shutdown.append(_closing)
    app.router.add_get("/", _page)
    app.router.add_get("/api/live", _live)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/api/status", _status)
    app.router.add_get("/readyz", _readyz)
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/api/devices", _devices)
    app.router.add_get("/api/queue", _queue)
    app.router.add_get("/api/sim", _sim)
    app.router.add_post("/api/sim/pause", _sim_pause)
    app.router.add_post("/api/sync", _start_sync)
    app.router.add_get("/api/sync", _sync_progress)
    app.router.add_get("/api/study", _study_state)
    for path, action in (
        ("/api/session/start", "session_start"),
        ("/api/session/stop", "session_stop"),
        ("/api/mark", "mark"),
        ("/api/assign", "assign"),
    ):
        app.router.add_post(path, _study_route(action))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    stack.push_async_callback(runner.cleanup)
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound_port = runner.addresses[0][1]
    return f"http://{host}:{bound_port}"


async def _closing(app: web.Application) -> None:
    app[_CLOSING_KEY].set()  # open event streams end, so shutdown does not wait for them


async def _page(request: web.Request) -> web.Response:
    page = resources.files("gateway.http").joinpath("static/live.html").read_text(encoding="utf-8")
    return web.Response(text=page, content_type="text/html")


async def _live(request: web.Request) -> web.StreamResponse:
    """Server-sent events: the newest vitals first, then every frame as it arrives."""
    feed = request.app[_SOURCE_KEY].live_feed()
    closing = request.app[_CLOSING_KEY]
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    with feed.subscribe() as queue:
        for event in feed.latest_vitals():
            await response.write(f"data: {json.dumps(event)}\n\n".encode())
        quiet_s = 0.0
        while not closing.is_set():
            try:
                event = await asyncio.wait_for(queue.get(), _POLL_S)
            except TimeoutError:
                quiet_s += _POLL_S
                if quiet_s >= _KEEPALIVE_S:
                    await response.write(b": keep-alive\n\n")
                    quiet_s = 0.0
                continue
            quiet_s = 0.0
            await response.write(f"data: {json.dumps(event)}\n\n".encode())
    return response


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _status(request: web.Request) -> web.Response:
    stats = await request.app[_SOURCE_KEY].statistics()
    return web.json_response(dataclasses.asdict(stats))


async def _readyz(request: web.Request) -> web.Response:
    """200 while sources and sinks run (with their state), 503 before and while stopping."""
    source = request.app[_SOURCE_KEY]
    if not source.is_ready():
        return web.json_response({"ready": False}, status=503)
    stats = await source.statistics()
    return web.json_response(
        {
            "ready": True,
            "devices": {d.device_id: d.connected for d in stats.devices},
            "mqtt": None if stats.mqtt is None else stats.mqtt.connected,
            "health_upload": {"last_error": stats.health_upload.last_error},
            "storage_full": stats.outbox.storage_full,
            "store_failing": stats.outbox.store_failing,
        }
    )


async def _metrics(request: web.Request) -> web.Response:
    body = metrics.exposition(await request.app[_SOURCE_KEY].statistics())
    return web.Response(body=body, content_type="text/plain", charset="utf-8")


async def _devices(request: web.Request) -> web.Response:
    stats = await request.app[_SOURCE_KEY].statistics()
    return web.json_response([dataclasses.asdict(d) for d in stats.devices])


async def _queue(request: web.Request) -> web.Response:
    stats = await request.app[_SOURCE_KEY].statistics()
    return web.json_response(
        {
            "outbox": dataclasses.asdict(stats.outbox),
            "health_upload_drain_eta_s": stats.health_upload_drain_eta_s,
        }
    )


async def _sim(request: web.Request) -> web.Response:
    """The simulator's ground truth (``ble.backend: sim`` only): what each device measured."""
    truth = request.app[_SOURCE_KEY].sim_truth()
    if truth is None:
        return web.json_response({"error": "not running against the simulator"}, status=404)
    return web.json_response(truth)


async def _sim_pause(request: web.Request) -> web.Response:
    """Stop every simulated device measuring (a benchmark's end: the counts hold still)."""
    if not request.app[_SOURCE_KEY].sim_pause():
        return web.json_response({"error": "not running against the simulator"}, status=404)
    return web.json_response({"paused": True})


async def _start_sync(request: web.Request) -> web.Response:
    body = await _body(request)
    if body is None or not isinstance(body.get("full", False), bool):
        return web.json_response({"error": 'expected {"full": true|false}'}, status=400)
    progress = await request.app[_SOURCE_KEY].request_sync(full=body.get("full", False))
    return web.json_response(dataclasses.asdict(progress), status=202)


async def _sync_progress(request: web.Request) -> web.Response:
    progress = request.app[_SOURCE_KEY].sync_progress()
    if progress is None:
        return web.json_response({"error": "no sync requested since start"}, status=404)
    return web.json_response(dataclasses.asdict(progress))


async def _body(request: web.Request) -> dict[str, Any] | None:
    try:
        body = await request.json() if request.can_read_body else {}
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _study_route(action: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    """A route for one study action.

    201 with what was stored, 400 on a bad body, 409 when the study refuses.
    """

    async def handler(request: web.Request) -> web.Response:
        body = await _body(request)
        if body is None:
            return web.json_response({"error": "expected a JSON object"}, status=400)
        try:
            item = await perform(request.app[_SOURCE_KEY].study_context(), action, body)
        except StudyError as exc:
            return web.json_response({"error": str(exc)}, status=409)
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(vars_of(item), status=201)

    return handler


async def _study_state(request: web.Request) -> web.Response:
    return web.json_response(request.app[_SOURCE_KEY].study_context().state())
