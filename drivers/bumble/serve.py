"""A simulated world's wearables on a bumble radio, for as long as a ``with`` block runs."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from drivers.bumble.peripheral import ServedPeripheral
from drivers.bumble.radio import BumbleRadio

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from drivers.sim.world import SimWorld


@contextlib.asynccontextmanager
async def served(
    world: SimWorld, bond_file: Path | None = None, connection_interval_s: float | None = None
) -> AsyncIterator[tuple[BumbleRadio, list[ServedPeripheral]]]:
    """Every peripheral of ``world`` (which must be running) served on one new radio.

    Its central keeps its bonds in ``bond_file`` (None: in memory); data goes at connection
    events of ``connection_interval_s`` (None: each packet as sent).
    """
    radio = BumbleRadio(bond_file, connection_interval_s)
    peripherals = [ServedPeripheral(radio.link, p) for p in world.peripherals.values()]
    radio.on_stall = [p.sim.drop_link for p in peripherals]
    await radio.power_on()
    tasks = [asyncio.create_task(p.run(), name=f"bumble[{p.sim.address}]") for p in peripherals]
    try:
        yield radio, peripherals
    finally:
        for peripheral in peripherals:
            peripheral.stop()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
