"""The simulated peripheral base: a GATT table, advertising, a link, and fault knobs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Callable, Sequence

    from bleak.assigned_numbers import CharacteristicPropertyName


@dataclass(frozen=True, slots=True)
class SimCharacteristic:
    """One characteristic of a simulated GATT table (normalised 128-bit UUID)."""

    uuid: str
    properties: tuple[CharacteristicPropertyName, ...]


@dataclass(frozen=True, slots=True)
class SimService:
    """One service of a simulated GATT table."""

    uuid: str
    characteristics: tuple[SimCharacteristic, ...]


class LinkObserver(Protocol):
    """What a peripheral tells the client backend connected to it."""

    def link_lost(self) -> None:
        """The peripheral dropped the link on its own."""


@dataclass(slots=True)
class LinkStatistics:
    """What a peripheral did on its side of the link; the ground truth for tests."""

    connects: int = 0
    link_drops: int = 0
    notifications_sent: int = 0
    malformed_sent: int = 0


class SimPeripheral:
    """Base of every simulated device.

    Subclasses declare ``services``, answer reads and writes, and produce notifications from
    timers on the event loop, started by :meth:`start` and stopped by :meth:`stop` (the
    :class:`~drivers.sim.world.SimWorld` does both).
    """

    services: Sequence[SimService] = ()

    def __init__(self, address: str, name: str, *, rssi_dbm: int = -60) -> None:
        self.address = address.upper()
        self.name = name
        self.rssi_dbm = rssi_dbm
        self.in_range = True
        self.connect_delay_s = 0.005
        self.link = LinkStatistics()
        self._observer: LinkObserver | None = None
        self._subscriptions: dict[str, Callable[[bytearray], None]] = {}
        self._timers: list[asyncio.TimerHandle] = []

    # --- link ---------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether a central holds the link."""
        return self._observer is not None

    def accept(self, observer: LinkObserver) -> None:
        """A central connected."""
        self._observer = observer
        self.link.connects += 1

    def release(self) -> None:
        """The central disconnected on purpose."""
        self._observer = None
        self._subscriptions.clear()
        self.on_link_closed()

    def drop_link(self) -> None:
        """Fault: the link drops (supervision timeout), as when the wearer walks away."""
        observer = self._observer
        if observer is None:
            return
        self.link.link_drops += 1
        self.release()
        observer.link_lost()

    def advertised_service_uuids(self) -> list[str]:
        """The service UUIDs put in advertisements."""
        return [service.uuid for service in self.services]

    # --- GATT ---------------------------------------------------------------------------------

    def subscribe(self, uuid: str, callback: Callable[[bytearray], None]) -> None:
        """The central enabled notifications or indications on ``uuid``."""
        self._subscriptions[uuid] = callback

    def unsubscribe(self, uuid: str) -> None:
        """The central disabled notifications on ``uuid``."""
        self._subscriptions.pop(uuid, None)

    def notify(self, uuid: str, payload: bytes, *, malformed: bool = False) -> bool:
        """Send a notification if the central subscribed; return whether it was sent."""
        callback = self._subscriptions.get(uuid)
        if callback is None:
            return False
        self.link.notifications_sent += 1
        self.link.malformed_sent += malformed
        callback(bytearray(payload))
        return True

    def read(self, uuid: str) -> bytes:
        """Answer a read; subclasses override for their readable characteristics."""
        msg = f"characteristic {uuid} is not readable"
        raise KeyError(msg)

    def write(self, uuid: str, data: bytes) -> None:
        """Take a write; subclasses override for their writable characteristics."""
        msg = f"characteristic {uuid} is not writable"
        raise KeyError(msg)

    def on_link_closed(self) -> None:
        """Hook: reset per-connection state (streams started over the control point)."""

    # --- clock --------------------------------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start the device's own timers."""

    def stop(self) -> None:
        """Stop every timer."""
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()

    def every(
        self, loop: asyncio.AbstractEventLoop, interval_s: float, tick: Callable[[int], None]
    ) -> None:
        """Call ``tick(k)`` at start + k * interval, on the loop, without drift."""
        start = loop.time()
        slot: list[asyncio.TimerHandle] = []

        def fire(k: int) -> None:
            self._timers.remove(slot[0])
            slot[0] = loop.call_at(start + (k + 1) * interval_s, fire, k + 1)
            self._timers.append(slot[0])
            tick(k)

        slot.append(loop.call_at(start + interval_s, fire, 0))
        self._timers.append(slot[0])


@dataclass(slots=True)
class StreamCounters:
    """Per-stream ground truth: what the device produced and what reached a central."""

    produced: int = 0
    sent: int = 0
    lost_link_down: int = 0
    values_sent: list[int] = field(default_factory=list)
