"""systemd's notify protocol (sd_notify(3)), spoken directly: a datagram to ``NOTIFY_SOCKET``.

READY=1 once sources and sinks are up, WATCHDOG=1 from the event loop (a stuck loop stops
sending it and systemd restarts the service), STATUS= a one-line summary, STOPPING=1 on
shutdown. Without ``NOTIFY_SOCKET`` (not under systemd) every call does nothing.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Final

log = logging.getLogger(__name__)

_MAX_STATUS: Final = 200


class Notifier:
    """One datagram socket to systemd, if it asked for notifications."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        if address.startswith("@"):  # an abstract socket
            address = "\0" + address[1:]
        self._address = address or None
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        wanted = usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid()))
        # Half the timeout, as sd_watchdog_enabled(3) advises.
        self.watchdog_interval_s: float | None = int(usec) / 2e6 if wanted else None

    @property
    def enabled(self) -> bool:
        """Whether systemd listens."""
        return self._address is not None

    def ready(self, status: str) -> None:
        """Sources and sinks are up."""
        self._send(f"READY=1\nSTATUS={status[:_MAX_STATUS]}")

    def status(self, status: str) -> None:
        """A one-line summary for ``systemctl status``."""
        self._send(f"STATUS={status[:_MAX_STATUS]}")

    def watchdog(self) -> None:
        """The event loop is alive."""
        self._send("WATCHDOG=1")

    def stopping(self) -> None:
        """Shutdown has begun."""
        self._send("STOPPING=1")

    def _send(self, message: str) -> None:
        if self._address is None:
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto(message.encode(), self._address)
        except OSError as exc:  # systemd went away: nothing to tell, nothing to stop for
            log.warning("sd_notify to %r failed: %s", self._address, exc)
