"""A reading as every consumer receives it: the decoded frame in UTC, with its study labels.

The pipeline builds one per frame; the outbox stores it deflated; the MQTT live lane, the live
page and Home Assistant take it as it is; a sink that reads the outbox decodes a stored row into
the same shape once (``codec.reading_of``). Payload builders take a reading, never a row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from drivers.frames import GapMarker, VitalReading

if TYPE_CHECKING:
    from drivers.frames import Frame


@dataclass(frozen=True, slots=True)
class Labels:
    """Who wore the device, and in which recording session (None: not assigned, none open)."""

    participant_id: str | None = None
    session_id: int | None = None

    def as_json(self) -> dict[str, object]:
        """``participant_id`` and ``session_id``, on every message and uploaded record."""
        return {"participant_id": self.participant_id, "session_id": self.session_id}


NO_LABELS = Labels()


@dataclass(frozen=True, slots=True)
class Reading:
    """One frame, in UTC, and its labels."""

    frame: Frame
    labels: Labels = NO_LABELS

    @property
    def row_kind(self) -> str:
        """The outbox row it is stored as: ``vital``, ``gap`` or ``waveform``."""
        if isinstance(self.frame, VitalReading):
            return "vital"
        return "gap" if isinstance(self.frame, GapMarker) else "waveform"

    @property
    def backfilled(self) -> bool:
        """Fetched from the device's memory, not received live."""
        return isinstance(self.frame, VitalReading) and self.frame.backfilled
