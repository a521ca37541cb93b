"""A cancel that 3.11's ``asyncio.wait_for`` swallows is raised again at a loop's head."""

from __future__ import annotations

import asyncio

import pytest

from gateway.cancellation import raise_if_cancelling


async def test_a_cancel_swallowed_by_wait_for_still_ends_the_loop() -> None:
    """Test the race that kept a sink publishing after SIGTERM: the cancel lands as the
    awaited future completes; wait_for returns, and the loop's next head raises.
    """
    loop = asyncio.get_running_loop()
    rounds = 0
    answer: asyncio.Future[int] = loop.create_future()

    async def publishing_loop() -> None:
        nonlocal rounds, answer
        while True:
            raise_if_cancelling()
            rounds += 1
            await asyncio.wait_for(answer, 10)  # aiomqtt's wait for a PUBACK
            answer = loop.create_future()

    task = asyncio.create_task(publishing_loop())
    await asyncio.sleep(0)
    answer.set_result(1)  # the PUBACK and the cancel in the same turn of the loop
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 2)
    assert rounds == 1


async def test_a_task_not_cancelled_goes_on() -> None:
    """Test that the check is silent in a task nobody cancelled (or whose timeout uncancelled)."""
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await asyncio.sleep(1)
    raise_if_cancelling()
