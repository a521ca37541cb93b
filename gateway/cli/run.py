"""``wgw run``: the gateway daemon, until SIGTERM or SIGINT, within its shutdown bound."""

from __future__ import annotations

import asyncio
import gc
import sqlite3
import sys
from typing import TYPE_CHECKING

from buffers.errors import StorageError
from gateway.cli.common import EX_IOERR, load, on_signals
from gateway.daemon import Daemon
from gateway.shutdown_guard import EXIT_ABANDONED, ShutdownGuard

if TYPE_CHECKING:
    import argparse


def arguments(parser: argparse.ArgumentParser) -> None:
    """``--config`` alone."""


def run(args: argparse.Namespace) -> int:
    """0 after a clean stop; 1 when the stop overran its bound; 74 when the store cannot open."""
    settings = load(args)
    daemon: Daemon | None = None

    def describe() -> str:
        return daemon.abandoned_now() if daemon is not None else "the start"

    guard = ShutdownGuard(settings.shutdown_timeout_s, describe)

    async def main() -> None:
        nonlocal daemon
        daemon = Daemon(settings)

        def stop() -> None:
            assert daemon is not None
            guard.arm()
            daemon.stop()

        on_signals(stop)
        await daemon.run()

    # What the imports built lives as long as the process: out of the collector's sight, a
    # full collection no longer walks it (one paused the event loop 20-50 ms, a live
    # reading's whole latency budget).
    gc.freeze()
    try:
        asyncio.run(main())
    except (OSError, sqlite3.Error, StorageError) as exc:
        if daemon is None or daemon.started:
            raise
        # a card gone read-only or failing at boot: one line, and systemd tries again later
        print(f"wgw: the store {settings.storage.path} cannot be opened: {exc}", file=sys.stderr)
        return EX_IOERR
    return EXIT_ABANDONED if daemon is not None and daemon.abandoned else 0
