"""The last resort of a bounded shutdown: a thread that ends the process at the deadline.

The daemon bounds its own drain (``Daemon.run``), but some waits no asyncio timeout reaches: a
worker thread in an fsync on a failing SD card (``asyncio.run`` joins the executor's threads at
exit), or a database thread left open. Under systemd such a stop would last until SIGKILL; this
guard exits first, saying so in one line.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Callable

EXIT_ABANDONED: Final = 1


class ShutdownGuard:
    """Armed at the first stop request; ``os._exit`` if the process still runs at the bound."""

    def __init__(self, timeout_s: float, describe: Callable[[], str]) -> None:
        self._timeout_s = timeout_s
        self._describe = describe
        self._timer: threading.Timer | None = None

    def arm(self) -> None:
        """Start counting (again: no-op)."""
        if self._timer is None:
            self._timer = threading.Timer(self._timeout_s, self._fire)
            self._timer.daemon = True
            self._timer.name = "wgw.shutdown_guard"
            self._timer.start()

    def disarm(self) -> None:
        """The process is done on its own."""
        if self._timer is not None:
            self._timer.cancel()

    def _fire(self) -> None:
        try:
            what = self._describe()
        except Exception as exc:  # noqa: BLE001 - the exit must happen whatever went wrong
            what = f"(state unreadable: {exc!r})"
        line = (
            f"wgw: shutdown not done within {self._timeout_s:.1f} s: exiting now; abandoned {what}"
        )
        os.write(2, line.encode() + b"\n")
        os._exit(EXIT_ABANDONED)
