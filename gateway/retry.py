"""One table from delivery error to what the sink does next: retry after a delay, or dead-letter."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from gateway.errors import AuthError, PermanentSinkError, RetryableSinkError, SinkError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from drivers.backoff import Backoff

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Retry:
    """Keep the rows queued and try again after ``after_s``."""

    after_s: float


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """Park the rows: sending them again cannot succeed."""

    reason: str


def classify(error: SinkError, attempt: int, backoff: Backoff) -> Retry | DeadLetter:
    """What to do after ``error`` on delivery attempt ``attempt`` (API.md's error table)."""
    if isinstance(error, PermanentSinkError):
        return DeadLetter(f"{error.code or error.status}: {error}")
    if isinstance(error, AuthError):
        # Credentials are fixed by a person; the data waits for them, slowly retried.
        return Retry(backoff.max_s)
    if isinstance(error, RetryableSinkError) and error.retry_after_s is not None:
        return Retry(error.retry_after_s)
    return Retry(backoff.delay_s(attempt))


async def retrying(call: Callable[[], Awaitable[T]], attempts: int = 3) -> T:
    """Run ``call`` again after a retryable failure, up to ``attempts`` times in all.

    For one-off commands (``wgw diagnose``, ``wgw ecg``); the sinks retry through the outbox.
    """
    for attempt in range(1, attempts):
        try:
            return await call()
        except RetryableSinkError as exc:
            await asyncio.sleep(
                exc.retry_after_s if exc.retry_after_s is not None else 2.0**attempt
            )
    return await call()
