"""Serving the emulator from the command line or the demo, on a real TCP port."""

from __future__ import annotations

import asyncio
import sys
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from aiohttp import web

from gateway.emulator.app import EmulatorConfig, emulator_app

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable


@asynccontextmanager
async def running_emulator(config: EmulatorConfig, host: str, port: int) -> AsyncIterator[str]:
    """Serve the emulator while the block runs; yield its base URL (port 0: a free port)."""
    runner = web.AppRunner(emulator_app(config), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        yield f"http://{host}:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def serve_forever(
    config: EmulatorConfig, host: str, port: int, on_signals: Callable[[Callable[[], None]], None]
) -> None:
    """``wgw emulator``: say where it listens and how to log in, then serve until a signal."""
    stop = asyncio.Event()
    on_signals(stop.set)
    async with running_emulator(config, host, port) as url:
        print(f"emulator listening on {url} (plan {config.plan})", flush=True)
        print(
            f"  TCM API:        {url}/api/v1  (login {config.email} / {config.password},"
            f" or API key {config.tcm_api_key})",
            flush=True,
        )
        print(
            f"  HeartVoice API: {url}/api/v1/experimental  (API key {config.heartvoice_api_key})",
            flush=True,
        )
        print(f"  received data:  {url}/_emulator/received", flush=True)
        sys.stdout.flush()
        await stop.wait()
