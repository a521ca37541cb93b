"""``BaseBleakScanner`` over a :class:`SimWorld`: in-range peripherals advertise periodically."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, ClassVar

from bleak.backends.scanner import AdvertisementData, BaseBleakScanner

if TYPE_CHECKING:
    from bleak.backends.scanner import AdvertisementDataCallback

    from drivers.sim.world import SimWorld


class SimScanner(BaseBleakScanner):
    """Scanner backend; :func:`drivers.sim.backend.make_backends` binds ``world``."""

    world: ClassVar[SimWorld]

    def __init__(
        self,
        detection_callback: AdvertisementDataCallback | None,
        service_uuids: list[str] | None,
        scanning_mode: str = "active",
        **kwargs: Any,
    ) -> None:
        super().__init__(detection_callback, service_uuids)
        self._timer: asyncio.TimerHandle | None = None

    async def start(self) -> None:
        """Start receiving advertisements (bleak's contract: forget what was seen before)."""
        self.seen_devices = {}
        self._advertise()

    async def stop(self) -> None:
        """Stop receiving advertisements."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _advertise(self) -> None:
        for p in self.world.peripherals.values():
            if not p.in_range or p.connected or self.world.adapter_stalled:
                continue
            service_uuids = p.advertised_service_uuids()
            if not self.is_allowed_uuid(service_uuids):
                continue
            adv = AdvertisementData(
                local_name=p.name,
                manufacturer_data={},
                service_data={},
                service_uuids=service_uuids,
                tx_power=None,
                rssi=p.rssi_dbm,
                platform_data=(),
            )
            device = self.create_or_update_device(p.address, p.address, p.name, p, adv)
            self.call_detection_callbacks(device, adv)
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self.world.advert_interval_s, self._advertise)
