"""How one outbox is set up: the file, its commit rhythm, its durability, its cap."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

Synchronous = Literal["normal", "full"]


@dataclass(frozen=True, slots=True)
class OutboxConfig:
    """The outbox's settings; see :class:`buffers.outbox.Outbox` for each."""

    path: Path
    flush_interval_ms: int = 1000
    flush_max_rows: int = 500
    queue_max_rows: int = 10_000
    synchronous: Synchronous = "normal"
    busy_timeout_ms: int = 5000
    max_db_mb: float | None = None
    index_interval_s: float = 60.0
    clock: Callable[[], float] = time.monotonic

    @property
    def cap_bytes(self) -> int | None:
        """The size cap in bytes, if any."""
        return int(self.max_db_mb * 1024 * 1024) if self.max_db_mb else None
