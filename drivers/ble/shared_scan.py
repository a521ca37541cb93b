"""One scan per adapter for every link looking for its device.

BlueZ keeps one discovery session per D-Bus client: a second scanner started by the same
process while the first runs is refused (``org.bluez.Error.InProgress``; in the BlueZ check,
three links looking at once found nothing). So the links of one adapter share one bleak
scanner: it runs while any link looks (and a while after), and each link is told when its
device advertises.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Self

from bleak import BleakScanner
from bleak.exc import BleakError

from drivers.errors import DeviceNotFound

if TYPE_CHECKING:
    from bleak.args.bluez import BlueZScannerArgs
    from bleak.backends.device import BLEDevice
    from bleak.backends.scanner import AdvertisementData

    from drivers.ble.adapter import AdapterWatch
    from drivers.ble.backends import BleBackends

Found = tuple["BLEDevice", "AdvertisementData"]
# a scan nobody looks through any more runs on this long: a link that lost its device is
# back soon, and each stop of a BlueZ discovery is a chance to hit bluez#807 (a stop refused
# while the kernel restarts its scan leaves discovery stuck until the adapter is power-cycled,
# which the adapter's watch then does; fixed in BlueZ 5.88, while Debian 12 and Raspberry Pi OS
# bookworm have 5.66). In the BlueZ check it struck at most stops.
_LINGER_S = 300.0


class SharedScan:
    """The adapter's scanner, shared by its links.

    Started for the first link that looks; stopped a while after the last one found its
    device, and at the end of the ``async with`` block.
    """

    def __init__(
        self,
        backends: BleBackends,
        adapter: AdapterWatch | None = None,
        *,
        linger_s: float = _LINGER_S,
    ) -> None:
        self._backends = backends
        self._adapter = adapter
        self._linger_s = linger_s
        self._wanted: dict[str, list[asyncio.Future[Found]]] = {}
        self._scanner: BleakScanner | None = None
        self._lock = asyncio.Lock()  # starts and stops, one at a time
        self._stopper: asyncio.Task[None] | None = None
        self._started_after = 0  # the adapter's recoveries when the scan started

    async def find(self, address: str, timeout_s: float) -> Found:
        """The device at ``address`` and its advertisement, once it advertises.

        Raises:
            DeviceNotFound: Nothing from it within ``timeout_s``.
            BleakError, OSError: The scan could not start.
        """
        wanted = address.upper()
        if self._stopper is not None:
            self._stopper.cancel()
            self._stopper = None
        found: asyncio.Future[Found] = asyncio.get_running_loop().create_future()
        self._wanted.setdefault(wanted, []).append(found)
        watch = self._adapter.scanning() if self._adapter else contextlib.nullcontext()
        try:
            with watch:
                await self._start()
                async with asyncio.timeout(timeout_s):
                    return await found
        except TimeoutError:
            raise DeviceNotFound(address, timeout_s) from None
        finally:
            waiting = self._wanted.get(wanted, [])
            if found in waiting:
                waiting.remove(found)
            if not waiting:
                self._wanted.pop(wanted, None)
            if not self._wanted and self._scanner is not None:
                self._stopper = asyncio.create_task(self._stop_later(), name="wgw.scan.stop")

    async def _start(self) -> None:
        async with self._lock:
            if self._scanner is not None and self._recoveries() != self._started_after:
                # the adapter was power-cycled under it: its discovery ended with the power
                scanner, self._scanner = self._scanner, None
                with contextlib.suppress(BleakError, OSError):
                    await scanner.stop()
            if self._scanner is not None:
                return
            # every advertisement, not only a device's first or changed ones: BlueZ keeps the
            # devices it heard, and would not report one heard before the link looked for it
            # (the scanner's own list of them would not do: a wedged adapter hears nothing,
            # and a device taken from that list hides it)
            duplicates: BlueZScannerArgs = {"filters": {"DuplicateData": True}}
            scanner = BleakScanner(
                self._on_advert, backend=self._backends.scanner, bluez=duplicates
            )
            try:
                await scanner.start()
            except (BleakError, OSError):
                if self._adapter is not None:
                    self._adapter.scan_failed()
                raise
            self._scanner = scanner
            self._started_after = self._recoveries()

    @property
    def scanning(self) -> bool:
        """Whether the adapter's scan runs now."""
        return self._scanner is not None

    def _recoveries(self) -> int:
        return self._adapter.statistics().recoveries if self._adapter is not None else 0

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        """Stop scanning now (the links are done)."""
        await self.close()

    async def close(self) -> None:
        """Stop scanning now (the links are done)."""
        if self._stopper is not None:
            self._stopper.cancel()
            self._stopper = None
        self._wanted.clear()
        await self._stop_when_unwanted()

    async def _stop_later(self) -> None:
        await asyncio.sleep(self._linger_s)
        await self._stop_when_unwanted()

    async def _stop_when_unwanted(self) -> None:
        async with self._lock:
            if self._wanted or self._scanner is None:
                return
            scanner, self._scanner = self._scanner, None
            with contextlib.suppress(BleakError, OSError):
                await scanner.stop()

    def _on_advert(self, device: BLEDevice, adv: AdvertisementData) -> None:
        if self._adapter is not None:
            self._adapter.advert_seen()
        for found in self._wanted.get(device.address.upper(), []):
            if not found.done():
                found.set_result((device, adv))
