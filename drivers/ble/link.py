"""One supervised BLE session per configured device: scan, connect, subscribe, decode, reconnect.

bleak callbacks only stamp the notification and ``put_nowait`` it on a bounded queue; one task
decodes and hands frames on (and may wait there: back-pressure stops at this queue, whose full
policy is drop-newest with a counter, since the radio cannot be paused).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from bleak import BleakClient, BleakScanner
from bleak.exc import BleakError

from drivers.errors import DecodeError, DeviceNotFound
from drivers.frames import Frame, VitalReading, WaveformChunk
from drivers.gatt import uuids
from drivers.gatt.heart_rate import decode_heart_rate_measurement
from drivers.polar import pmd

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from bleak.backends.characteristic import BleakGATTCharacteristic
    from bleak.backends.device import BLEDevice
    from bleak.backends.scanner import AdvertisementData

    from drivers.ble.backends import BleBackends

log = logging.getLogger(__name__)

_DECODE_LOG_INTERVAL_S: Final = 10.0


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    """What the link needs to know of one configured device."""

    device_id: str
    address: str
    ppg_rate_hz: int = 55


@dataclass(frozen=True, slots=True)
class LinkTimings:
    """Every radio await is bounded; reconnects back off exponentially with full jitter."""

    scan_timeout_s: float = 10.0
    connect_timeout_s: float = 10.0
    gatt_timeout_s: float = 5.0
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0
    notification_queue_max: int = 1000


@dataclass(frozen=True, slots=True)
class LinkStatistics:
    """A device's connection state and counters, for status pages and metrics."""

    device_id: str
    connected: bool
    connects: int
    links_lost: int
    notifications: int
    decode_errors: int
    dropped_queue_full: int
    readings: int
    samples: int
    battery_pct: int | None
    rssi_dbm: int | None


@dataclass(frozen=True, slots=True)
class _Notification:
    uuid: str
    data: bytearray
    received_s: float


class DeviceLink:
    """Keeps one device connected and turns its notifications into frames, forever."""

    def __init__(
        self,
        spec: DeviceSpec,
        backends: BleBackends,
        emit: Callable[[Frame], Awaitable[None]],
        timings: LinkTimings | None = None,
    ) -> None:
        self.spec = spec
        self._backends = backends
        self._emit = emit
        self._timings = timings or LinkTimings()
        self._queue: asyncio.Queue[_Notification] = asyncio.Queue(
            self._timings.notification_queue_max
        )
        self._seq: dict[str, int] = {}
        self._connected = False
        self._connects = 0
        self._links_lost = 0
        self._notifications = 0
        self._decode_errors = 0
        self._dropped = 0
        self._readings = 0
        self._samples = 0
        self._battery_pct: int | None = None
        self._rssi_dbm: int | None = None
        self._last_decode_log_s = -_DECODE_LOG_INTERVAL_S

    def statistics(self) -> LinkStatistics:
        """A snapshot of the link's state and counters."""
        return LinkStatistics(
            self.spec.device_id,
            self._connected,
            self._connects,
            self._links_lost,
            self._notifications,
            self._decode_errors,
            self._dropped,
            self._readings,
            self._samples,
            self._battery_pct,
            self._rssi_dbm,
        )

    async def run(self) -> None:
        """Connect and stream until cancelled, reconnecting after every loss.

        On cancellation the link disconnects, then hands on every notification the radio had
        already delivered, so a shutdown loses nothing that reached the gateway.
        """
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._decode_loop(), name=f"wgw[{self.spec.device_id}].notify")
                await self._supervise()
        finally:
            while not self._queue.empty():
                await self._handle(self._queue.get_nowait())

    async def _supervise(self) -> None:
        attempt = 0
        while True:
            try:
                await self._session()
                attempt = 0
            except (BleakError, DeviceNotFound, TimeoutError, OSError) as exc:
                # OSError: bleak's BlueZ backend raises FileNotFoundError without D-Bus.
                log.warning("%s: %s", self.spec.device_id, exc or type(exc).__name__)
            attempt += 1
            await asyncio.sleep(self._backoff_s(attempt))

    def _backoff_s(self, attempt: int) -> float:
        t = self._timings
        return random.uniform(0.0, min(t.reconnect_max_s, t.reconnect_min_s * 2 ** (attempt - 1)))

    async def _session(self) -> None:
        """One connection, from scan to link loss."""
        t = self._timings
        device = await self._find()
        lost = asyncio.Event()
        client = BleakClient(
            device,
            disconnected_callback=lambda _client: lost.set(),
            timeout=t.connect_timeout_s,
            backend=self._backends.client,
        )
        async with asyncio.timeout(t.connect_timeout_s):
            await client.connect()
        try:
            self._connected = True
            self._connects += 1
            log.info("%s: connected to %s", self.spec.device_id, self.spec.address)
            async with asyncio.timeout(t.gatt_timeout_s):
                await self._subscribe(client)
            await lost.wait()
            self._links_lost += 1
            log.warning("%s: link lost", self.spec.device_id)
        finally:
            self._connected = False
            with contextlib.suppress(BleakError, TimeoutError):
                async with asyncio.timeout(t.gatt_timeout_s):
                    await client.disconnect()

    async def _find(self) -> BLEDevice:
        """Scan until the device advertises (taking its RSSI), within the scan timeout."""
        found: asyncio.Future[BLEDevice] = asyncio.get_running_loop().create_future()
        wanted = self.spec.address.upper()

        def on_advert(device: BLEDevice, adv: AdvertisementData) -> None:
            if device.address.upper() == wanted and not found.done():
                self._rssi_dbm = adv.rssi
                found.set_result(device)

        timeout_s = self._timings.scan_timeout_s
        try:
            async with (
                BleakScanner(on_advert, backend=self._backends.scanner),
                asyncio.timeout(timeout_s),
            ):
                return await found
        except TimeoutError:
            raise DeviceNotFound(self.spec.address, timeout_s) from None

    async def _subscribe(self, client: BleakClient) -> None:
        services = client.services
        if services.get_characteristic(uuids.BATTERY_LEVEL) is not None:
            self._battery_pct = (await client.read_gatt_char(uuids.BATTERY_LEVEL))[0]
        if services.get_characteristic(uuids.HEART_RATE_MEASUREMENT) is not None:
            await client.start_notify(uuids.HEART_RATE_MEASUREMENT, self._on_notify)
        if services.get_characteristic(pmd.PMD_DATA) is not None:
            await client.start_notify(pmd.PMD_CONTROL_POINT, self._on_notify)
            await client.start_notify(pmd.PMD_DATA, self._on_notify)
            command = pmd.start_command(pmd.StreamSettings("ppg", self.spec.ppg_rate_hz, 22, 4))
            await client.write_gatt_char(pmd.PMD_CONTROL_POINT, command, response=True)

    def _on_notify(self, characteristic: BleakGATTCharacteristic, data: bytearray) -> None:
        """Bleak's callback: stamp, enqueue, count; never raise."""
        self._notifications += 1
        try:
            self._queue.put_nowait(_Notification(characteristic.uuid, data, time.time()))
        except asyncio.QueueFull:
            self._dropped += 1

    async def _decode_loop(self) -> None:
        while True:
            await self._handle(await self._queue.get())

    async def _handle(self, note: _Notification) -> None:
        try:
            frame = self._decode(note)
        except DecodeError as exc:
            self._decode_errors += 1
            now = time.monotonic()
            if now - self._last_decode_log_s >= _DECODE_LOG_INTERVAL_S:
                self._last_decode_log_s = now
                log.warning(
                    "%s: dropped malformed notification (%d so far): %s",
                    self.spec.device_id,
                    self._decode_errors,
                    exc,
                )
            return
        if frame is not None:
            await self._emit(frame)

    def _decode(self, note: _Notification) -> Frame | None:
        if note.uuid == uuids.HEART_RATE_MEASUREMENT:
            m = decode_heart_rate_measurement(note.data)
            self._readings += 1
            return VitalReading(
                self.spec.device_id,
                "heart_rate",
                self._next_seq("heart_rate"),
                note.received_s,
                m.to_json(),
            )
        if note.uuid == pmd.PMD_DATA:
            f = pmd.decode_pmd_data(note.data)
            n = f.samples.shape[0]
            self._samples += n
            rate = float(self.spec.ppg_rate_hz)
            # No clock mapping yet: the receive time is the last sample's time.
            t0_s = note.received_s - (n - 1) / rate
            return WaveformChunk(
                self.spec.device_id,
                f.measurement,
                self._next_seq(f.measurement),
                t0_s,
                rate,
                f.samples,
            )
        if note.uuid == pmd.PMD_CONTROL_POINT:
            response = pmd.decode_control_point_response(note.data)
            if not response.ok:
                log.error(
                    "%s: device refused PMD %s start (status %d)",
                    self.spec.device_id,
                    response.measurement,
                    response.status,
                )
        return None

    def _next_seq(self, stream: str) -> int:
        seq = self._seq.get(stream, 0)
        self._seq[stream] = seq + 1
        return seq
