"""Logging setup for the CLI: one human-readable line per event on stderr."""

from __future__ import annotations

import logging


def configure_logging(level: str = "INFO") -> None:
    """Log to stderr; libraries stay at WARNING so the gateway's own lines are readable."""
    logging.basicConfig(
        level=logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for name in ("gateway", "drivers", "buffers"):
        logging.getLogger(name).setLevel(level)
