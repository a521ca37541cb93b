"""``wgw sync [--full]``: ask the running daemon for a sync now, follow it with a progress bar."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Final

import aiohttp
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from gateway.cli import daemon_client
from gateway.cli.common import load

if TYPE_CHECKING:
    import argparse

_POLL_S: Final = 0.5


async def _sync(api: daemon_client.Endpoint, *, full: bool, timeout_s: float | None) -> int:
    """Start the sync, draw its progress on stderr, print the outcome; the exit status."""
    err = Console(stderr=True)
    kind = "full resend" if full else "incremental batch"
    try:
        async with api.session() as session:
            async with session.post(f"{api.url}/api/sync", json={"full": full}) as response:
                started: dict[str, Any] = await response.json()
                if response.status != 202:
                    err.print(f"error: the daemon refused the sync: {started.get('error')}")
                    return 1
            async with asyncio.timeout(timeout_s):
                last = await _follow(session, api.url, started, kind, err)
    except TimeoutError:
        err.print(
            f"error: the sync did not finish within {timeout_s:g} s; it goes on in the daemon"
        )
        return 2
    except aiohttp.ClientError as exc:
        daemon_client.say_no_daemon(api.url, exc)
        return 1
    print(
        f"{kind}: {last['done_rows']} readings in {last['records']} records,"
        f" {last['requests']} requests"
        + (f" (last error: {last['last_error']})" if last.get("last_error") else "")
    )
    return 0


async def _follow(
    session: aiohttp.ClientSession,
    url: str,
    progress: dict[str, Any],
    kind: str,
    err: Console,
) -> dict[str, Any]:
    columns = (
        TextColumn(f"{kind}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("readings"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err, transient=False) as bar:
        task = bar.add_task(kind, total=progress["total_rows"])
        while True:
            bar.update(task, completed=progress["done_rows"], total=progress["total_rows"])
            if progress["state"] == "done":
                return progress
            await asyncio.sleep(_POLL_S)
            async with session.get(f"{url}/api/sync") as response:
                response.raise_for_status()
                progress = await response.json()


def arguments(parser: argparse.ArgumentParser) -> None:
    """``--full``, ``--timeout``."""
    parser.add_argument("--full", action="store_true", help="resend every retained reading")
    parser.add_argument("--timeout", type=float, default=None, help="stop following after S s")


def run(args: argparse.Namespace) -> int:
    """Follow the sync to its end; 1 when the daemon's API is off or refuses."""
    api = daemon_client.endpoint_of(load(args).http)
    if api is None:
        return 1
    return asyncio.run(_sync(api, full=args.full, timeout_s=args.timeout))
