"""``BaseBleakScanner`` over a bumble central: the advertisements on the virtual radio."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from bleak.backends.scanner import AdvertisementData, BaseBleakScanner
from bleak.uuids import normalize_uuid_str
from bumble.core import AdvertisingData

if TYPE_CHECKING:
    from bleak.backends.scanner import AdvertisementDataCallback
    from bumble.device import Advertisement

    from drivers.bumble.radio import BumbleRadio


class BumbleScanner(BaseBleakScanner):
    """Scanner backend; ``ble.backends.bumble`` binds ``radio``."""

    radio: ClassVar[BumbleRadio]

    def __init__(
        self,
        detection_callback: AdvertisementDataCallback | None,
        service_uuids: list[str] | None,
        scanning_mode: str = "active",
        **kwargs: Any,
    ) -> None:
        super().__init__(detection_callback, service_uuids)

    async def start(self) -> None:
        """Start receiving advertisements (bleak's contract: forget what was seen before)."""
        self.seen_devices = {}
        await self.radio.listen(self._advertisement)

    async def stop(self) -> None:
        """Stop receiving advertisements."""
        await self.radio.unlisten(self._advertisement)

    def _advertisement(self, advertisement: Advertisement) -> None:
        data = advertisement.data
        name = data.get(AdvertisingData.COMPLETE_LOCAL_NAME)
        local_name = name.decode() if isinstance(name, bytes) else (name or None)
        address = str(advertisement.address).split("/")[0].upper()
        uuids = [
            normalize_uuid_str(uuid.to_hex_str("-"))
            for kind in (
                AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
                AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
            )
            for uuid in (data.get(kind) or [])
        ]
        if not self.is_allowed_uuid(uuids):
            return
        adv = AdvertisementData(
            local_name=local_name,
            manufacturer_data={},
            service_data={},
            service_uuids=uuids,
            tx_power=None,
            rssi=advertisement.rssi,
            platform_data=(advertisement,),
        )
        device = self.create_or_update_device(address, address, local_name, advertisement, adv)
        self.call_detection_callbacks(device, adv)
