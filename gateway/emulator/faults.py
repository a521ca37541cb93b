"""Fault injection for the emulator: what a field gateway meets on a bad day.

Set at start (``EmulatorConfig.faults``) or at run time (``POST /_emulator/faults``, a JSON
object with any of the fields below; ``GET`` shows them). Applies to both APIs, not to the
emulator's own ``/_emulator`` routes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from aiohttp.typedefs import Handler


@dataclass(slots=True)
class Faults:
    """The knobs.

    Attributes:
        latency_s: Added before every answer.
        error_rates: HTTP status -> probability that a request is answered with it.
        fail_next: Statuses for the next requests, in order (a 429 storm: ``[429] * 20``).
        outage_until: Epoch seconds; until then every request fails as ``outage_mode`` says.
        outage_mode: ``503`` (the service answers SERVICE_UNAVAILABLE) or ``drop`` (the
            connection is closed without an answer: a network error for the client).
        reset_next: The next N answers are cut off mid-body (connection reset).
        slow_body_s: The body of every answer trickles out over this long.
        seed: For the random error rates.
        unanswered_accepted: Observed, not a knob: health records the server stored whose
            answer was cut off, so the client will send them again (tests count re-sends).
    """

    latency_s: float = 0.0
    error_rates: dict[int, float] = field(default_factory=dict)
    fail_next: list[int] = field(default_factory=list)
    outage_until: float = 0.0
    outage_mode: str = "503"
    reset_next: int = 0
    slow_body_s: float = 0.0
    seed: int = 0
    rng: random.Random = field(default_factory=random.Random, repr=False)
    injected: int = 0
    unanswered_accepted: int = 0

    def update(self, changes: dict[str, Any]) -> str | None:
        """Apply a control request; return a problem, or None.

        Besides the fields, ``outage_s`` starts an outage of that many seconds from now.
        """
        known = {f.name for f in fields(self)} - {"rng", "injected", "unanswered_accepted"} | {
            "outage_s"
        }
        unknown = sorted(set(changes) - known)
        if unknown:
            return f"unknown fault {unknown[0]!r}"
        if "error_rates" in changes:
            try:
                changes["error_rates"] = {
                    int(k): float(v) for k, v in changes["error_rates"].items()
                }
            except (AttributeError, TypeError, ValueError):
                return "error_rates: {status: probability}"
        fail_next = changes.get("fail_next", [])
        if not (
            isinstance(fail_next, list)
            and all(isinstance(s, int) and 400 <= s < 600 for s in fail_next)
        ):
            return "fail_next: list of HTTP error statuses"
        for name, value in changes.items():
            if name == "outage_s":
                self.outage_until = time.time() + float(value)
            elif name == "fail_next":
                self.fail_next.extend(value)
            else:
                setattr(self, name, value)
        if "seed" in changes:
            self.rng.seed(self.seed)
        return None

    def public(self) -> dict[str, Any]:
        """What ``GET /_emulator/faults`` shows."""
        shown = asdict(self)
        shown.pop("rng")
        return shown

    def status_now(self) -> int | None:
        """The failure status this request gets, if any (outage, queued, or random)."""
        if time.time() < self.outage_until and self.outage_mode == "503":
            return 503
        if self.fail_next:
            return self.fail_next.pop(0)
        for status, rate in sorted(self.error_rates.items()):
            if self.rng.random() < rate:
                return status
        return None

    def dropping(self) -> bool:
        """Whether this request's connection is closed without an answer."""
        return time.time() < self.outage_until and self.outage_mode == "drop"


async def deliver(request: web.Request, faults: Faults, handler: Handler) -> web.StreamResponse:
    """Run ``handler`` with latency, cut-off bodies and slow bodies applied."""
    if faults.latency_s:
        await asyncio.sleep(faults.latency_s)
    answer = await handler(request)
    if not isinstance(answer, web.Response) or answer.body is None:
        return answer
    body = bytes(answer.body)  # type: ignore[arg-type]
    if faults.reset_next > 0:
        faults.reset_next -= 1
        faults.injected += 1
        with contextlib.suppress(ValueError, AttributeError):
            faults.unanswered_accepted += int(json.loads(body).get("accepted", 0))
        return await _cut_off(request, answer, body)
    if faults.slow_body_s > 0:
        return await _trickle(request, answer, body, faults.slow_body_s)
    return answer


async def _cut_off(request: web.Request, answer: web.Response, body: bytes) -> web.StreamResponse:
    stream = web.StreamResponse(status=answer.status, headers=answer.headers)
    stream.content_length = len(body)
    await stream.prepare(request)
    await stream.write(body[: len(body) // 2])
    if request.transport is not None:
        request.transport.close()
    return stream


async def _trickle(
    request: web.Request, answer: web.Response, body: bytes, over_s: float
) -> web.StreamResponse:
    stream = web.StreamResponse(status=answer.status, headers=answer.headers)
    stream.content_length = len(body)
    await stream.prepare(request)
    pieces = 10
    step = max(1, len(body) // pieces)
    for i in range(0, len(body), step):
        await stream.write(body[i : i + step])
        await asyncio.sleep(over_s / pieces)
    await stream.write_eof()
    return stream
