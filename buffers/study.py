"""The study context: who wore which device from when, recording sessions, event markers.

Assignments are only ever added, so a reassignment never rewrites the past. They are stored in
the outbox file (``buffers.outbox.study``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Assignment:
    """From ``from_s`` on, ``device_id`` is worn by ``participant_id`` (None: nobody)."""

    device_id: str
    from_s: float
    participant_id: str | None
    site: str | None = None
    study: str | None = None
    source: str = "api"  # or "config": where the assignment came from


@dataclass(frozen=True, slots=True)
class Session:
    """One recording session of one participant."""

    id: int
    participant_id: str
    label: str | None
    started_s: float
    stopped_s: float | None = None


@dataclass(frozen=True, slots=True)
class Marker:
    """An annotation on the samples' time line."""

    id: int
    t_s: float
    text: str
    participant_id: str | None
    session_id: int | None
