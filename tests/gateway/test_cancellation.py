"""A stop that Python 3.11's ``asyncio.wait_for`` would swallow still ends the loop."""

from __future__ import annotations

import asyncio

import pytest

from gateway.cancellation import StopFlag


async def publishing_loop(stopping: StopFlag, answers: list[asyncio.Future[int]]) -> None:
    """A sink's loop: each turn waits for a broker's answer as aiomqtt does (``wait_for``)."""
    while True:
        stopping.check()
        await asyncio.wait_for(answers[-1], 10)
        answers.append(asyncio.get_running_loop().create_future())


async def test_a_cancel_swallowed_by_wait_for_still_ends_the_loop() -> None:
    """Test the race that kept a sink publishing after SIGTERM: the cancel lands as the
    awaited answer arrives; wait_for returns, and the flag ends the loop at its next turn.
    """
    stopping = StopFlag()
    answers = [asyncio.get_running_loop().create_future()]
    task = asyncio.create_task(publishing_loop(stopping, answers))
    await asyncio.sleep(0)
    answers[0].set_result(1)  # the PUBACK and the cancel in the same turn of the loop
    stopping.set()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 2)
    assert len(answers) == 2  # it went round once more, and no further


async def test_without_the_flag_the_swallowed_cancel_is_lost() -> None:
    """Test that the race is real on this Python (3.11): the loop goes on after cancel()."""
    answers = [asyncio.get_running_loop().create_future()]
    task = asyncio.create_task(publishing_loop(StopFlag(), answers))
    await asyncio.sleep(0)
    answers[0].set_result(1)
    task.cancel()
    await asyncio.sleep(0.01)
    swallowed = not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    if not swallowed:
        pytest.xfail("this Python raises the cancel (3.12+): the flag is a no-op there")
