"""The simulated peripheral: a GATT table, a link to one central, timers, and fault knobs.

Faults are behaviours of the peripheral, as in the field: the link drops, the wearer walks out
of range, connections are refused or slow, notifications are lost in the air or arrive in a
burst, a packet is malformed, a stream goes silent while the link stays up.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

from drivers.sim.clock import SimClock

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Callable, Sequence

    from bleak.assigned_numbers import CharacteristicPropertyName


Security = Literal["none", "just_works", "passkey"]
SUPERVISION_TIMEOUT = 0x08  # the HCI reason a central sees when a peripheral goes silent


class AttError(Exception):
    """A write refused with an ATT error code (the simulated client raises it as bleak does)."""

    def __init__(self, code: int) -> None:
        super().__init__(f"ATT error: 0x{code:02x}")
        self.code = code


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

    def link_lost(self, reason: int) -> None:
        """The peripheral dropped the link on its own; ``reason``: the HCI code it gives."""


@dataclass(slots=True)
class LinkStatistics:
    """What happened to the link, from the peripheral's side."""

    connects: int = 0
    refused: int = 0
    link_drops: int = 0
    notifications_sent: int = 0


@dataclass(slots=True)
class StreamCounters:
    """Per-stream ground truth: what the device measured and what became of it.

    ``units`` are samples for waveforms and readings for vitals. ``sent`` reached the central
    intact; ``lost_link_down`` were measured while no central listened; ``lost_radio`` were
    sent and lost in the air; ``malformed`` were sent corrupted; ``stalled`` were measured
    while the stream was stuck.
    """

    produced: int = 0
    sent: int = 0
    lost_link_down: int = 0
    lost_radio: int = 0
    malformed: int = 0
    malformed_packets: int = 0  # the notifications that carried them
    stalled: int = 0
    bytes_sent: int = 0  # payload bytes of the notifications that went out (malformed too)
    values_sent: list[int] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Receipt:
    """What one notification carries in the ground truth, for a transport that may lose it."""

    counters: StreamCounters
    units: int
    intact: bool  # counted sent (else malformed)

    def undelivered(self) -> None:
        """The transport could not deliver it after all (the link went): lost in the air."""
        if self.intact:
            self.counters.sent -= self.units
        else:
            self.counters.malformed -= self.units
            self.counters.malformed_packets -= 1
        self.counters.lost_radio += self.units


class SimPeripheral:
    """Base of every simulated device; subclasses declare ``services`` and their streams."""

    services: Sequence[SimService] = ()

    def __init__(self, address: str, name: str, *, seed: int = 1, rssi_dbm: int = -60) -> None:
        self.address = address.upper()
        self.name = name
        self.rssi_dbm = rssi_dbm
        self.max_mtu = 247  # the largest ATT MTU the device takes in an exchange
        self.start_delay_s = 0.0  # switched on this long after start (its timers start then)
        # what its health services need: nothing, an encrypted link ("just works" pairing),
        # or an authenticated one (the central enters ``passkey``, which the device shows);
        # only a transport with encryption (bumble's) enforces it
        self.security: Security = "none"
        self.passkey = 123456
        self.pairings = 0  # pairings completed (a bonded central re-encrypts instead)
        self.bonds: object | None = None  # the transport's store of its bonds (its memory)
        self.mtu = 23  # the current link's ATT MTU (the transport sets it)
        self.rng = random.Random(seed)
        self.clock = SimClock()
        self.in_range = True
        self.connect_delay_s = 0.005
        self.refuse_next_connects = 0
        self.lose_next_notifications = 0
        self.malformed_rate = 0.0
        self.link = LinkStatistics()
        self._observer: LinkObserver | None = None
        self.receipt: Receipt | None = None  # the notification being handed on, while it is
        self._subscriptions: dict[str, Callable[[bytearray], None]] = {}
        self._stalled: set[str] = set()
        self._stubborn: set[str] = set()
        self._held: list[tuple[Callable[[bytearray], None], bytes]] | None = None
        self._timers: list[asyncio.TimerHandle] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self.started_utc_s = 0.0

    # --- link ---------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether a central holds the link."""
        return self._observer is not None

    def accept(self, observer: LinkObserver) -> bool:
        """A central asks to connect; refused while ``refuse_next_connects`` lasts."""
        if self.refuse_next_connects > 0:
            self.refuse_next_connects -= 1
            self.link.refused += 1
            return False
        self._observer = observer
        self.link.connects += 1
        return True

    def release(self) -> None:
        """The link is gone: subscriptions and per-connection state go with it."""
        self._observer = None
        self._subscriptions.clear()
        self._stalled.clear()
        self._stubborn.clear()
        self.on_link_closed()

    def drop_link(self, reason: int = SUPERVISION_TIMEOUT) -> None:
        """Fault: the link drops (by default as radio loss: a supervision timeout)."""
        observer = self._observer
        if observer is None:
            return
        self.link.link_drops += 1
        self.release()
        observer.link_lost(reason)

    def go_out_of_range(self, duration_s: float) -> None:
        """Fault: the wearer walks away for ``duration_s`` simulated seconds."""
        self.in_range = False
        self.drop_link()
        self.after(duration_s, self._back_in_range)

    def _back_in_range(self) -> None:
        self.in_range = True

    def stall(self, uuid: str, *, until_reconnect: bool = False) -> None:
        """Fault: the stream on ``uuid`` goes silent while the link stays up.

        It comes back when the central subscribes again (or restarts the PMD stream), or, with
        ``until_reconnect``, only when the link is rebuilt.
        """
        self._stalled.add(uuid)
        if until_reconnect:
            self._stubborn.add(uuid)

    def unstall(self, uuid: str) -> None:
        """A new subscription or restart command: the stream works again unless stubborn."""
        if uuid not in self._stubborn:
            self._stalled.discard(uuid)

    def hold_notifications(self, duration_s: float) -> None:
        """Fault: notifications queue up for ``duration_s`` and then arrive in one burst."""
        self._held = []
        self.after(duration_s, self._release_held)

    def _release_held(self) -> None:
        held, self._held = self._held or [], None
        for callback, payload in held:
            callback(bytearray(payload))

    def advertised_service_uuids(self) -> list[str]:
        """The service UUIDs put in advertisements."""
        return [service.uuid for service in self.services]

    # --- GATT ---------------------------------------------------------------------------------

    def subscribe(self, uuid: str, callback: Callable[[bytearray], None]) -> None:
        """The central enabled notifications or indications on ``uuid`` (un-stalls it)."""
        self._subscriptions[uuid] = callback
        self.unstall(uuid)

    def unsubscribe(self, uuid: str) -> None:
        """The central disabled notifications on ``uuid``."""
        self._subscriptions.pop(uuid, None)

    def send(self, uuid: str, payload: bytes, counters: StreamCounters, units: int) -> None:
        """Send one measurement's notification and account for every unit of it."""
        counters.produced += units
        callback = self._subscriptions.get(uuid)
        if callback is None:
            counters.lost_link_down += units
            return
        if uuid in self._stalled:
            counters.stalled += units
            return
        self.link.notifications_sent += 1
        if self.lose_next_notifications > 0:
            self.lose_next_notifications -= 1
            counters.lost_radio += units
            return
        cut = len(payload) > self.mtu - 3  # a stack sends what fits of a longer value
        intact = not cut and not (self.malformed_rate and self.rng.random() < self.malformed_rate)
        if intact:
            counters.sent += units
        else:
            counters.malformed += units
            counters.malformed_packets += 1
            payload = payload[: self.mtu - 3] if cut else self.malform(uuid, payload)
        counters.bytes_sent += len(payload)
        if self._held is not None:
            self._held.append((callback, payload))
            return
        self.receipt = Receipt(counters, units, intact)  # for the callback (a transport)
        try:
            callback(bytearray(payload))
        finally:
            self.receipt = None

    def malform(self, uuid: str, payload: bytes) -> bytes:
        """A corrupted version of ``payload`` that its decoder must refuse (default: truncated).

        Subclasses corrupt in a way the profile can detect: a truncation that happens to end on
        a sample boundary would be indistinguishable from a shorter, valid packet.
        """
        return payload[:1]

    def indicate(self, uuid: str, payload: bytes) -> None:
        """Answer on a control characteristic (never lost, never malformed)."""
        callback = self._subscriptions.get(uuid)
        if callback is not None:
            callback(bytearray(payload))

    def read(self, uuid: str) -> bytes:
        """Answer a read; subclasses override for their readable characteristics."""
        msg = f"characteristic {uuid} is not readable"
        raise KeyError(msg)

    def write(self, uuid: str, data: bytes) -> None:
        """Take a write; subclasses override for their writable characteristics."""
        msg = f"characteristic {uuid} is not writable"
        raise KeyError(msg)

    def on_link_closed(self) -> None:
        """Hook: reset per-connection state (streams started over a control point)."""

    # --- clock --------------------------------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop, clock: SimClock) -> None:
        """Start the device's timers on ``loop``, in ``clock``'s time."""
        self._loop = loop
        self.clock = clock
        self.started_utc_s = clock.now_s() + self.start_delay_s
        if self.start_delay_s > 0:
            self.after(self.start_delay_s, self.on_start)
        else:
            self.on_start()

    def on_start(self) -> None:
        """Hook: subclasses start their measurement timers here with :meth:`every`."""

    def stop(self) -> None:
        """Stop every timer (the device stops measuring)."""
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()

    def every(self, interval_s: float, tick: Callable[[int], None]) -> None:
        """Call ``tick(k)`` at start + (k + 1) * interval simulated seconds, without drift."""
        loop = self._require_loop()
        start = loop.time()
        step = self.clock.real_s(interval_s)
        slot: list[asyncio.TimerHandle] = []

        def fire(k: int) -> None:
            self._timers.remove(slot[0])
            slot[0] = loop.call_at(start + (k + 2) * step, fire, k + 1)
            self._timers.append(slot[0])
            tick(k)

        slot.append(loop.call_at(start + step, fire, 0))
        self._timers.append(slot[0])

    def after(self, delay_s: float, callback: Callable[[], None]) -> None:
        """Call ``callback`` once, ``delay_s`` simulated seconds from now."""
        loop = self._require_loop()
        slot: list[asyncio.TimerHandle] = []

        def fire() -> None:
            self._timers.remove(slot[0])  # fired: no longer kept (a soak would pile them up)
            callback()

        slot.append(loop.call_later(self.clock.real_s(delay_s), fire))
        self._timers.append(slot[0])

    def _require_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            msg = f"{self.name} is not started (enter its SimWorld first)"
            raise RuntimeError(msg)
        return self._loop
