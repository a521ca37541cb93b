"""A virtual radio with connection events: what one side sends between two events goes together.

bumble's ``LocalLink`` hands each ACL packet over as soon as it is sent. On air, a connection
carries data only at its connection events, one every connection interval (7.5 ms to 4 s; 15 to
50 ms for most wearables): notifications queued in between arrive several in one event, back to
back, and every ATT request waits for an event each way.
"""

from __future__ import annotations

import asyncio
import math
from typing import TYPE_CHECKING

from bumble import core
from bumble.link import LocalLink

if TYPE_CHECKING:
    from bumble import hci
    from bumble.controller import Controller


class AddressedLink(LocalLink):
    """A ``LocalLink`` whose LE data names its sender by the address its connection uses.

    bumble's names it by the sender's random address, while a central that connected from its
    public address (BlueZ does, on a controller it sees through ``/dev/vhci``) is known to the
    peripheral by that one: every packet from it was dropped as "no connection".
    """

    def send_acl_data(
        self,
        sender_controller: Controller,
        destination_address: hci.Address,
        transport: core.PhysicalTransport,
        data: bytes,
    ) -> None:
        """Deliver ``data`` from the address of the sender's connection (LE)."""
        if transport != core.PhysicalTransport.LE:
            super().send_acl_data(sender_controller, destination_address, transport, data)
            return
        destination = self.find_le_controller(destination_address)
        if destination is None:  # gone: a real sender hears of it by supervision timeout
            return
        self._deliver(destination, self.source_of(sender_controller, destination_address), data)

    def _deliver(self, destination: Controller, source: hci.Address, data: bytes) -> None:
        """At once (in the next turn of the loop)."""
        asyncio.get_running_loop().call_soon(
            destination.on_link_acl_data, source, core.PhysicalTransport.LE, data
        )

    @staticmethod
    def source_of(sender: Controller, destination_address: hci.Address) -> hci.Address:
        """The address ``sender`` uses on its connection to ``destination_address``."""
        connection = sender.le_connections.get(destination_address)
        return connection.self_address if connection is not None else sender.random_address


class EventLink(AddressedLink):
    """A ``LocalLink`` whose LE data waits for the next connection event of ``interval_s``.

    Events fall on the loop clock's multiples of the interval, the same for every link (a
    simplification: a real central staggers its connections' anchors). ``largest_event`` is the
    most packets one event carried to one side.
    """

    def __init__(self, interval_s: float) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.interval_s = interval_s
        self.largest_event = 0
        self._queued: dict[Controller, list[tuple[hci.Address, bytes]]] = {}

    def _deliver(self, destination: Controller, source: hci.Address, data: bytes) -> None:
        """At the destination's next connection event."""
        queue = self._queued.setdefault(destination, [])
        if not queue:
            loop = asyncio.get_running_loop()
            event_at = (math.floor(loop.time() / self.interval_s) + 1) * self.interval_s
            loop.call_at(event_at, self._event, destination)
        queue.append((source, data))

    def _event(self, destination: Controller) -> None:
        packets = self._queued.pop(destination, [])
        self.largest_event = max(self.largest_event, len(packets))
        for source, data in packets:  # in one turn of the loop, in the order sent
            destination.on_link_acl_data(source, core.PhysicalTransport.LE, data)
