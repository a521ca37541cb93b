"""The daemon's study context: who wears each device, open sessions, markers.

Every stored row is labelled from it. Config gives each device's participant; a change of
participant in config, or an assignment over the local API, takes effect from a moment (now,
unless given) and never rewrites the past. One open session per participant at a time.
"""

from __future__ import annotations

import bisect
import dataclasses
import logging
from typing import TYPE_CHECKING, Any

from buffers.errors import StorageError
from buffers.study import Assignment, Marker, Session

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from buffers.outbox import Outbox
    from buffers.records import ClockStamp
    from gateway.config import DeviceConfig

log = logging.getLogger(__name__)


class StudyError(ValueError):
    """A study request that cannot be done as asked (the API answers 409)."""


class StudyContext:
    """Assignments and open sessions in memory, written through to the outbox file."""

    def __init__(
        self, outbox: Outbox, now: Callable[[], float], stamp: Callable[[], ClockStamp]
    ) -> None:
        self._outbox = outbox
        self._now = now
        self._stamp = stamp
        self._assignments: dict[str, list[Assignment]] = {}
        self._open: dict[str, Session] = {}  # participant -> open session
        self._listeners: list[Callable[[float, str], None]] = []

    def listen(self, listener: Callable[[float, str], None]) -> None:
        """Tell ``listener`` (which must not wait) of every marker, note and session start or stop.

        It gets the UTC time and the text (the LSL markers outlet listens).
        """
        self._listeners.append(listener)

    def _tell(self, t_s: float, text: str) -> None:
        for listener in self._listeners:
            listener(t_s, text)

    async def load(self, devices: Sequence[DeviceConfig]) -> None:
        """Read the file; record config's assignments that differ from the latest one."""
        for a in await self._outbox.study.assignments():
            self._assignments.setdefault(a.device_id, []).append(a)
        for d in devices:
            history = self._assignments.get(d.id, [])
            from_config = [a for a in history if a.source == "config"]
            wanted = (d.participant, d.site, d.study)
            last = from_config[-1] if from_config else None
            if last is None and d.participant is None:
                continue
            # Config applies when it changed since it was last applied: an assignment made over
            # the API in between stands until config says something new.
            if last is None or (last.participant_id, last.site, last.study) != wanted:
                await self.assign(
                    d.id,
                    d.participant,
                    from_s=self._now() if history else 0.0,
                    site=d.site,
                    study=d.study,
                    source="config",
                )
        opened = await self._outbox.study.sessions(open_only=True)
        self._open = {s.participant_id: s for s in opened}

    def participant_for(self, device_id: str, t_s: float) -> str | None:
        """Who wore ``device_id`` at ``t_s``."""
        history = self._assignments.get(device_id)
        if not history:
            return None
        i = bisect.bisect_right([a.from_s for a in history], t_s) - 1
        return history[i].participant_id if i >= 0 else None

    def session_for(self, participant_id: str | None, t_s: float) -> int | None:
        """The participant's session open at ``t_s``, if any."""
        session = self._open.get(participant_id) if participant_id else None
        return session.id if session is not None and session.started_s <= t_s else None

    async def assign(
        self,
        device_id: str,
        participant_id: str | None,
        *,
        from_s: float | None = None,
        site: str | None = None,
        study: str | None = None,
        source: str = "api",
    ) -> Assignment:
        """``device_id`` is worn by ``participant_id`` from ``from_s`` (default now).

        Raises:
            StudyError: ``from_s`` is before the device's latest assignment (the past stays).
        """
        start = self._now() if from_s is None else from_s
        latest = self._latest(device_id)
        if latest is not None and start < latest.from_s:
            msg = f"{device_id} is assigned from {latest.from_s}: a new assignment starts later"
            raise StudyError(msg)
        a = Assignment(device_id, start, participant_id, site, study, source)
        # Frames are labelled from memory: it changes before the first await, so that no frame
        # stamped after ``start`` is labelled while the write is under way; a failed write
        # takes it back.
        history = self._assignments.setdefault(device_id, [])
        before = list(history)
        history[:] = [x for x in history if x.from_s != start] + [a]
        try:
            await self._outbox.study.add_assignment(a)
        except BaseException:
            history[:] = before
            raise
        log.info("%s is worn by %s from %s", device_id, participant_id, start)
        return a

    async def start_session(self, participant_id: str, label: str | None) -> Session:
        """Open a session now.

        Raises:
            StudyError: The participant has an open session already.
        """
        if participant_id in self._open:
            msg = f"{participant_id} has an open session ({self._open[participant_id].id})"
            raise StudyError(msg)
        session = await self._outbox.study.start_session(participant_id, label, self._now())
        self._open[participant_id] = session
        self._tell(session.started_s, f"session {session.id} start: {participant_id} {label or ''}")
        return session

    async def stop_session(self, participant_id: str | None) -> Session:
        """Close the participant's open session (or the only open one).

        Raises:
            StudyError: No such open session, or several and none named.
        """
        if participant_id is None:
            if len(self._open) != 1:
                msg = f"{len(self._open)} open sessions: name the participant"
                raise StudyError(msg)
            participant_id = next(iter(self._open))
        session = self._open.pop(participant_id, None)
        if session is None:
            msg = f"{participant_id} has no open session"
            raise StudyError(msg)
        stopped = await self._outbox.study.stop_session(session, self._now())
        self._tell(self._now(), f"session {session.id} stop: {participant_id}")
        return stopped

    async def mark(self, text: str, participant_id: str | None) -> Marker:
        """A marker now, in the samples' time base, with the participant's open session.

        With no participant named and exactly one session open, that session's.
        """
        if participant_id is None and len(self._open) == 1:
            participant_id = next(iter(self._open))
        t = self._now()
        marker = await self._outbox.study.add_marker(
            t,
            text,
            participant_id=participant_id,
            session_id=self.session_for(participant_id, t),
            clock=self._stamp(),
        )
        self._tell(t, text)
        return marker

    async def device_note(self, device_id: str, text: str) -> None:
        """A marker about a device (a stream started with other settings), now.

        It goes with the session of the participant wearing the device. Never raises: a note
        lost to a failing store is said in the log.
        """
        t = self._now()
        participant_id = self.participant_for(device_id, t)
        try:
            await self._outbox.study.add_marker(
                t,
                text,
                participant_id=participant_id,
                session_id=self.session_for(participant_id, t),
                clock=self._stamp(),
            )
        except StorageError as exc:
            log.warning("%s: a note was not stored (%s): %s", device_id, exc, text)
        self._tell(t, text)

    def state(self) -> dict[str, Any]:
        """Current assignments and open sessions, as the local API shows them."""
        return {
            "assignments": {
                device: [vars_of(a) for a in history]
                for device, history in self._assignments.items()
            },
            "open_sessions": [vars_of(s) for s in self._open.values()],
        }

    def _latest(self, device_id: str) -> Assignment | None:
        history = self._assignments.get(device_id)
        return history[-1] if history else None


def vars_of(item: Assignment | Session | Marker) -> dict[str, object]:
    """A record of the study store as JSON-ready fields."""
    return dataclasses.asdict(item)


ACTIONS = ("session_start", "session_stop", "mark", "assign")


async def perform(
    study: StudyContext, action: str, body: dict[str, Any]
) -> Assignment | Session | Marker:
    """One study request, as the local API and the MQTT command topic receive it.

    Raises:
        ValueError: An unknown action, or a field missing or of the wrong type.
        StudyError: The study refuses (a second open session, an assignment in the past...).
    """
    if action == "session_start":
        return await study.start_session(_text(body, "participant"), _optional(body, "label"))
    if action == "session_stop":
        return await study.stop_session(_optional(body, "participant"))
    if action == "mark":
        return await study.mark(_text(body, "text"), _optional(body, "participant"))
    if action == "assign":
        start = body.get("from")
        if start is not None and not isinstance(start, int | float):
            msg = "from: epoch seconds"
            raise ValueError(msg)
        return await study.assign(
            _text(body, "device"),
            _optional(body, "participant"),
            from_s=None if start is None else float(start),
            site=_optional(body, "site"),
            study=_optional(body, "study"),
        )
    msg = f"action: one of {', '.join(ACTIONS)}"
    raise ValueError(msg)


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value or len(value) > 200:
        msg = f"{name}: a non-empty string (at most 200 characters) is required"
        raise ValueError(msg)
    return value


def _optional(body: dict[str, Any], name: str) -> str | None:
    return None if body.get(name) is None else _text(body, name)
