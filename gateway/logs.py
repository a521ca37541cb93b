"""Logging setup for the CLI: human-readable lines on stderr, or JSON lines by config.

A line about a device or a cloud request carries its id as a field (``device_id``,
``request_id``: the server's id, which its operators can look up). The drivers and sinks pass
them as ``extra``; the JSON form writes them as keys, the text form appends what the message
does not already say.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Final, Literal

LogFormat = Literal["text", "json"]

# Record attributes (set through ``extra=``) that identify what a line is about.
CONTEXT_FIELDS: Final = ("device_id", "stream", "sink", "adapter", "request_id")
_TEXT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonLinesFormatter(logging.Formatter):
    """One JSON object a line: ts, level, logger, message, the context ids, any exception."""

    def format(self, record: logging.LogRecord) -> str:
        """The line."""
        line: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class TextFormatter(logging.Formatter):
    """The classic line, plus ``[request_id=...]`` and the like where the message lacks them."""

    def __init__(self) -> None:
        super().__init__(_TEXT)

    def format(self, record: logging.LogRecord) -> str:
        """The line."""
        text = super().format(record)
        message = record.getMessage()
        tags = [
            f"{name}={value}"
            for name in CONTEXT_FIELDS
            if (value := getattr(record, name, None)) is not None and str(value) not in message
        ]
        return f"{text} [{' '.join(tags)}]" if tags else text


def configure_logging(level: str = "INFO", log_format: LogFormat = "text") -> None:
    """Log to stderr; libraries stay at WARNING so the gateway's own lines are readable."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLinesFormatter() if log_format == "json" else TextFormatter())
    logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)
    for name in ("gateway", "drivers", "buffers"):
        logging.getLogger(name).setLevel(level)
