"""A stop that survives Python 3.11's ``asyncio.wait_for`` swallowing the cancel.

On 3.11 ``wait_for`` returns the result instead of raising ``CancelledError`` when the future
it waits for completes in the same turn of the loop as the cancel (fixed in 3.12). aiomqtt waits
for every PUBACK that way: a sink loop cancelled at that moment went on publishing, its task
never ended, and a SIGTERM left the daemon running until SIGKILL (issue 18, 1 stop in 6 with
the live lane off). ``Task.cancelling()`` cannot tell either: 3.11's TaskGroup leaves it raised
when a child fails while the group is exiting. So the owner says "stop" before it cancels, and
the loops look at their head.
"""

from __future__ import annotations

import asyncio


class StopFlag:
    """Set by the owner just before it cancels; checked at the head of each loop."""

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        """The task is about to be cancelled, and must end."""
        self._set = True

    def check(self) -> None:
        """Raise ``CancelledError`` once the flag is set (a swallowed cancel, raised again)."""
        if self._set:
            raise asyncio.CancelledError
