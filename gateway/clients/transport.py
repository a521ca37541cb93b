"""What every cloud client sends with: TLS settings and bounded connect and read times."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING

import aiohttp

if TYPE_CHECKING:
    from pathlib import Path


@dataclass(frozen=True, slots=True)
class Transport:
    """TLS verification (on unless configured off; a custom CA bundle if given) and timeouts."""

    verify_tls: bool
    ca_bundle: Path | None
    connect_timeout_s: float
    timeout_s: float

    def ssl(self) -> ssl.SSLContext | bool:
        """The ``ssl=`` argument for aiohttp."""
        if not self.verify_tls:
            return False
        if self.ca_bundle is not None:
            return ssl.create_default_context(cafile=str(self.ca_bundle))
        return True

    def timeout(self) -> aiohttp.ClientTimeout:
        """A bound on connecting, on each read, and on the whole request."""
        return aiohttp.ClientTimeout(
            total=self.timeout_s, sock_connect=self.connect_timeout_s, sock_read=self.timeout_s
        )
