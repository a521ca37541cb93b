"""What the outbox counts in memory since it opened (the rest of its figures live in the file)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class Counts:
    """Records accepted, committed, and every one not kept, by reason."""

    accepted: int = 0
    committed: int = 0
    commits: int = 0
    backpressure_waits: int = 0
    duplicates: int = 0  # dropped: their source key was held already
    discarded: dict[str, int] = field(default_factory=dict)  # reason -> records not kept

    def discard(self, reason: str, records: int) -> None:
        """Count ``records`` not kept for ``reason``."""
        if records > 0:
            self.discarded[reason] = self.discarded.get(reason, 0) + records

    @property
    def uncommitted(self) -> int:
        """Records accepted and not yet committed (what a crash now would lose)."""
        return self.accepted - self.committed - sum(self.discarded.values()) - self.duplicates
