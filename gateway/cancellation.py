"""A cancellation that Python 3.11's ``asyncio.wait_for`` swallowed, made to stick.

On 3.11 ``wait_for`` returns the result instead of raising ``CancelledError`` when the future
it waits for completes in the same turn of the loop as the cancel (fixed in 3.12). aiomqtt waits
for every PUBACK that way: a sink loop cancelled at that moment went on publishing, its task
never ended, and a SIGTERM left the daemon running until SIGKILL (issue 18, 1 stop in 6 with
the live lane off). Loops that await such calls check at their head.
"""

from __future__ import annotations

import asyncio


def raise_if_cancelling() -> None:
    """Raise ``CancelledError`` if this task was asked to stop and has not stopped yet."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
