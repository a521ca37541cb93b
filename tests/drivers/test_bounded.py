"""Bounded queues: each full policy, the drop count and the high-water mark."""

from __future__ import annotations

import pytest

from drivers.bounded import BoundedQueue, FullPolicy


def test_drop_newest_keeps_what_was_queued() -> None:
    """Test a full drop-newest queue: the offered item goes, counted; the queue is unchanged."""
    queue: BoundedQueue[int] = BoundedQueue(2, FullPolicy.DROP_NEWEST)
    assert [queue.offer(i) for i in range(4)] == [True, True, False, False]
    assert [queue.get_nowait(), queue.get_nowait()] == [0, 1]
    assert (queue.dropped, queue.high_water) == (2, 2)


def test_drop_oldest_keeps_the_newest() -> None:
    """Test a full drop-oldest queue: the oldest item makes room, counted."""
    queue: BoundedQueue[int] = BoundedQueue(2, FullPolicy.DROP_OLDEST)
    assert [queue.offer(i) for i in range(4)] == [True, True, False, False]
    assert [queue.get_nowait(), queue.get_nowait()] == [2, 3]
    assert queue.dropped == 2


async def test_block_waits_and_refuses_offers() -> None:
    """Test a blocking queue: puts count toward the high-water mark, offers are a mistake."""
    queue: BoundedQueue[int] = BoundedQueue(3, FullPolicy.BLOCK)
    for i in range(3):
        await queue.put(i)
    assert queue.full() and queue.high_water == 3
    with pytest.raises(RuntimeError):
        queue.offer(9)
    assert queue.dropped == 0


def test_a_bound_is_required() -> None:
    """Test that an unbounded queue cannot be made by accident."""
    with pytest.raises(ValueError, match="positive"):
        BoundedQueue(0, FullPolicy.DROP_NEWEST)
