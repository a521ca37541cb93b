"""Which bleak backends to build with (``None``: the platform's own), and their adapter recovery."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from drivers.ble import bluez

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from bleak.backends.client import BaseBleakClient
    from bleak.backends.scanner import BaseBleakScanner

    from drivers.bumble.radio import BumbleRadio
    from drivers.sim.world import SimWorld


@dataclass(frozen=True, slots=True)
class BleBackends:
    """The scanner and client backend classes every bleak object is built with."""

    scanner: type[BaseBleakScanner] | None = None
    client: type[BaseBleakClient] | None = None
    recover_adapter: Callable[[str], Awaitable[bool]] | None = None


PLATFORM = BleBackends(recover_adapter=bluez.recover_adapter)


def simulated(world: SimWorld) -> BleBackends:
    """Backends bound to ``world`` (bleak wants classes, so each world gets subclasses)."""
    from drivers.sim.client import SimClient  # noqa: PLC0415 - BlueZ deployments never load the simulator
    from drivers.sim.scanner import SimScanner  # noqa: PLC0415

    scanner = type("SimScanner", (SimScanner,), {"world": world})
    client = type("SimClient", (SimClient,), {"world": world})
    return BleBackends(scanner, client, world.reset_adapter)


def bumble(radio: BumbleRadio) -> BleBackends:
    """Backends on bumble's host stack over ``radio`` (the optional ``bumble`` extra)."""
    from drivers.bumble.client import BumbleClient  # noqa: PLC0415 - an optional extra
    from drivers.bumble.scanner import BumbleScanner  # noqa: PLC0415

    scanner = type("BumbleScanner", (BumbleScanner,), {"radio": radio})
    client = type("BumbleClient", (BumbleClient,), {"radio": radio})
    return BleBackends(scanner, client, radio.reset_adapter)
