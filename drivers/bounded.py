"""Bounded queues that say what happens when they are full, and count every item they drop.

``BLOCK``: the producer waits (back-pressure reaches it). ``DROP_NEWEST``: the item offered is
dropped (a radio callback or a live lane cannot wait). ``DROP_OLDEST``: the oldest queued item
makes room (a consumer that only cares about now). ``offer`` never waits; ``put`` waits only
under ``BLOCK``.
"""

from __future__ import annotations

import asyncio
import enum
from typing import TypeVar

T = TypeVar("T")


class FullPolicy(enum.Enum):
    """What a full queue does with one more item."""

    BLOCK = "block"
    DROP_NEWEST = "drop_newest"
    DROP_OLDEST = "drop_oldest"


class BoundedQueue(asyncio.Queue[T]):
    """An asyncio queue of at most ``maxsize`` items: a full policy, drops, a high-water mark."""

    def __init__(self, maxsize: int, policy: FullPolicy) -> None:
        if maxsize <= 0:
            msg = "a bounded queue needs a positive maxsize"
            raise ValueError(msg)
        super().__init__(maxsize)
        self.policy = policy
        self.dropped = 0
        self.high_water = 0

    def offer(self, item: T) -> bool:
        """Queue ``item`` now, by the policy; False when an item was dropped (counted).

        Raises:
            RuntimeError: The policy is ``BLOCK``: use ``await put``.
        """
        if self.policy is FullPolicy.BLOCK:
            msg = "a blocking queue is put to, not offered to"
            raise RuntimeError(msg)
        if self.full():
            self.dropped += 1
            if self.policy is FullPolicy.DROP_NEWEST:
                return False
            self.get_nowait()
            self.put_nowait(item)
            return False
        self.put_nowait(item)
        return True

    def _put(self, item: T) -> None:  # every put lands here: the high-water mark
        super()._put(item)
        self.high_water = max(self.high_water, self.qsize())
