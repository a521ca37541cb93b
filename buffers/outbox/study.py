"""The study context's own small store in the outbox file: assignments, sessions, markers.

Beside the writer's group commits: one short transaction a change (they are rare).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from buffers.study import Assignment, Marker, Session

if TYPE_CHECKING:
    from buffers.outbox.index import Index
    from buffers.records import ClockStamp


class StudyStore:
    """Assignments, sessions and markers, read and written through the outbox's index."""

    def __init__(self, index: Index) -> None:
        self._index = index

    async def assignments(self) -> list[Assignment]:
        """Every assignment, per device oldest first."""
        rows = await self._index.read(
            "SELECT device_id, from_s, participant_id, site, study, source FROM assignments"
            " ORDER BY device_id, from_s"
        )
        return [Assignment(*row) for row in rows]

    async def add_assignment(self, a: Assignment) -> None:
        """Record an assignment (one at the same moment for the same device is replaced)."""
        async with self._index.transaction() as db:
            await db.execute(
                "INSERT OR REPLACE INTO assignments"
                " (device_id, from_s, participant_id, site, study, source)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (a.device_id, a.from_s, a.participant_id, a.site, a.study, a.source),
            )

    async def sessions(self, *, open_only: bool = False) -> list[Session]:
        """Sessions, oldest first (``open_only``: those not stopped)."""
        where = " WHERE stopped_s IS NULL" if open_only else ""
        rows = await self._index.read(
            "SELECT id, participant_id, label, started_s, stopped_s FROM sessions"  # noqa: S608
            f"{where} ORDER BY id"
        )
        return [Session(*row) for row in rows]

    async def start_session(
        self, participant_id: str, label: str | None, started_s: float
    ) -> Session:
        """A new open session."""
        async with self._index.transaction() as db:
            cur = await db.execute(
                "INSERT INTO sessions (participant_id, label, started_s) VALUES (?, ?, ?)",
                (participant_id, label, started_s),
            )
            session_id = cur.lastrowid
        assert session_id is not None
        return Session(session_id, participant_id, label, started_s)

    async def stop_session(self, session: Session, stopped_s: float) -> Session:
        """Close ``session`` at ``stopped_s``."""
        async with self._index.transaction() as db:
            await db.execute(
                "UPDATE sessions SET stopped_s = ? WHERE id = ? AND stopped_s IS NULL",
                (stopped_s, session.id),
            )
        return Session(
            session.id, session.participant_id, session.label, session.started_s, stopped_s
        )

    async def add_marker(
        self,
        t_s: float,
        text: str,
        *,
        participant_id: str | None,
        session_id: int | None,
        clock: ClockStamp | None = None,
    ) -> Marker:
        """Store one marker (with its clock stamp, so a clock jump corrects it like the samples)."""
        async with self._index.transaction() as db:
            cur = await db.execute(
                "INSERT INTO markers (t_s, text, participant_id, session_id, boot_id,"
                " clock_offset_s, clock_synced) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    t_s,
                    text,
                    participant_id,
                    session_id,
                    clock.boot_id if clock else None,
                    clock.offset_s if clock else None,
                    clock.synced if clock else None,
                ),
            )
            marker_id = cur.lastrowid
        assert marker_id is not None
        return Marker(marker_id, t_s, text, participant_id, session_id)
