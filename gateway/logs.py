"""Logging setup for the CLI: human-readable lines on stderr, or JSON lines by config.

Under systemd, when stderr is the journal's stream (``JOURNAL_STREAM``), a text line starts
with its syslog priority (``<4>``: sd-daemon(3)) and carries no time of its own: the journal
stamps it, and ``journalctl -p warning`` finds it.

A line about a device or a cloud request carries its id as a field (``device_id``,
``request_id``: the server's id, which its operators can look up). The drivers and sinks pass
them as ``extra``; the JSON form writes them as keys, the text form appends what the message
does not already say.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Final, Literal

LogFormat = Literal["text", "json"]

# Record attributes (set through ``extra=``) that identify what a line is about.
CONTEXT_FIELDS: Final = ("device_id", "stream", "sink", "adapter", "request_id")
_TEXT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_JOURNAL_TEXT: Final = "%(levelname)s %(name)s: %(message)s"
# syslog priorities (sd-daemon(3)): err, warning, info, debug; critical above all
_PRIORITY: Final = {logging.CRITICAL: 2, logging.ERROR: 3, logging.WARNING: 4, logging.INFO: 6}


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
    """The classic line, plus ``[request_id=...]`` and the like where the message lacks them.

    ``journal``: no time, and each line (a traceback's too) prefixed with its priority.
    """

    def __init__(self, *, journal: bool = False) -> None:
        super().__init__(_JOURNAL_TEXT if journal else _TEXT)
        self._journal = journal

    def format(self, record: logging.LogRecord) -> str:
        """The line."""
        text = super().format(record)
        message = record.getMessage()
        tags = [
            f"{name}={value}"
            for name in CONTEXT_FIELDS
            if (value := getattr(record, name, None)) is not None and str(value) not in message
        ]
        if tags:
            first, newline, rest = text.partition("\n")
            text = f"{first} [{' '.join(tags)}]{newline}{rest}"
        if self._journal:
            priority = next((p for n, p in _PRIORITY.items() if record.levelno >= n), 7)
            text = "\n".join(f"<{priority}>{line}" for line in text.split("\n"))
        return text


def stderr_is_the_journal() -> bool:
    """Whether stderr is the journal's stream: ``JOURNAL_STREAM`` holds its device and inode."""
    device, _, inode = os.environ.get("JOURNAL_STREAM", "").partition(":")
    try:
        stat = os.fstat(sys.stderr.fileno())
        return (stat.st_dev, stat.st_ino) == (int(device), int(inode))
    except (ValueError, OSError):  # not set, malformed, or stderr is no file
        return False


def configure_logging(level: str = "INFO", log_format: LogFormat = "text") -> None:
    """Log to stderr; libraries stay at WARNING so the gateway's own lines are readable."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonLinesFormatter())
    else:
        handler.setFormatter(TextFormatter(journal=stderr_is_the_journal()))
    logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)
    for name in ("gateway", "drivers", "buffers"):
        logging.getLogger(name).setLevel(level)
