"""Bounded waits for the processes a benchmark starts: one that does not stop fails the bench.

A benchmark that waits without a limit for a daemon that never exits hangs forever (it did:
issue 18); here every wait has a deadline, past which the process is killed and the bench
exits with a message instead.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys

DAEMON_STOP_S = 30.0  # above the daemon's shutdown_timeout_s (10 s) and its guard


class NotStopped(SystemExit):
    """A process outlived its deadline; the bench ends with this message and status 1."""

    def __init__(self, what: str, timeout_s: float) -> None:
        super().__init__(f"bench failed: {what} did not exit within {timeout_s:g} s (killed)")


async def stop(
    process: asyncio.subprocess.Process,
    what: str,
    *,
    timeout_s: float = DAEMON_STOP_S,
    sig: int = signal.SIGTERM,
) -> int:
    """Send ``sig`` (unless it exited), wait at most ``timeout_s``; its exit status."""
    if process.returncode is None:
        process.send_signal(sig)
    return await wait(process, what, timeout_s=timeout_s)


async def wait(
    process: asyncio.subprocess.Process, what: str, *, timeout_s: float = DAEMON_STOP_S
) -> int:
    """Wait for an exit at most ``timeout_s``; kill and fail the bench past it."""
    try:
        return await asyncio.wait_for(process.wait(), timeout_s)
    except TimeoutError:
        process.kill()
        await process.wait()
        print(f"{what} did not exit within {timeout_s:g} s", file=sys.stderr)
        raise NotStopped(what, timeout_s) from None


def stop_popen(process: subprocess.Popen[bytes], what: str, *, timeout_s: float = 10.0) -> None:
    """The same for a process started with ``subprocess`` (the broker)."""
    process.terminate()
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise NotStopped(what, timeout_s) from None
