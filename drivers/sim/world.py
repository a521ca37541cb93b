"""The simulated radio environment: every peripheral in range, their clock, and their timers."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Self

from drivers.sim.clock import SimClock

if TYPE_CHECKING:
    from collections.abc import Iterable
    from types import TracebackType

    from drivers.sim.peripheral import SimPeripheral


class SimWorld:
    """The peripherals a simulated adapter can see; an async context manager running them.

    Args:
        peripherals: The devices.
        advert_interval_s: How often each device advertises (real seconds).
        speed: Simulated seconds per real second, for device clocks and measurement timers.
    """

    def __init__(
        self,
        peripherals: Iterable[SimPeripheral],
        *,
        advert_interval_s: float = 0.05,
        speed: float = 1.0,
    ) -> None:
        self.peripherals = {p.address: p for p in peripherals}
        self.advert_interval_s = advert_interval_s
        self.clock = SimClock(speed)
        self.adapter_stalled = False
        self.adapter_resets = 0
        self.adapter_reset_s = 0.05
        self._running = False

    def peripheral(self, address: str) -> SimPeripheral | None:
        """The peripheral at ``address`` if it exists and is in range."""
        found = self.peripherals.get(address.upper())
        return found if found is not None and found.in_range else None

    def stall_adapter(self) -> None:
        """Fault: the adapter wedges as BlueZ controllers do, until :meth:`reset_adapter`.

        Every link drops; scans "succeed" but report no advertisement; connects are aborted.
        """
        self.adapter_stalled = True
        for p in self.peripherals.values():
            p.drop_link()

    def pause(self) -> None:
        """Every device stops measuring (a benchmark's final count holds still)."""
        for p in self.peripherals.values():
            p.stop()

    async def reset_adapter(self, adapter: str) -> bool:
        """Power-cycle the adapter: links drop, advertisements come back; True (it worked)."""
        await asyncio.sleep(self.adapter_reset_s)
        for p in self.peripherals.values():
            p.drop_link()
        self.adapter_stalled = False
        self.adapter_resets += 1
        return True

    async def __aenter__(self) -> Self:
        if self._running:
            msg = "SimWorld is not reentrant"
            raise RuntimeError(msg)
        loop = asyncio.get_running_loop()
        self.clock = SimClock(self.clock.speed)
        for p in self.peripherals.values():
            p.start(loop, self.clock)
        self._running = True
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for p in self.peripherals.values():
            p.stop()
            p.drop_link()
        self._running = False
