"""One supervised BLE session per configured device: scan, connect, subscribe, decode, reconnect.

bleak callbacks only stamp the notification and ``put_nowait`` it on a bounded queue; one task
decodes and hands frames on (and may wait there: back-pressure stops at this queue, whose full
policy is drop-newest with a counter, since the radio cannot be paused). Link losses and
watchdog actions travel through the same queue, so gaps are placed exactly where they happened
in the stream of notifications.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

from bleak import BleakClient, BleakScanner
from bleak.exc import BleakError

from drivers.ble.backfill import RECORDED, RecordAccess, Transfer, decode_record
from drivers.ble.device_clock import DeviceClock
from drivers.ble.streams import StreamStatistics, StreamTracker
from drivers.catalog import lookup
from drivers.errors import DecodeError, DeviceNotFound
from drivers.frames import Frame, GapMarker, VitalReading, WaveformChunk
from drivers.gatt import uuids
from drivers.gatt.battery import decode_battery_level
from drivers.gatt.current_time import decode_current_time
from drivers.gatt.device_information import decode_device_information_string
from drivers.polar import pmd

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from bleak.backends.characteristic import BleakGATTCharacteristic
    from bleak.backends.device import BLEDevice
    from bleak.backends.scanner import AdvertisementData

    from drivers.ble.adapter import AdapterWatch
    from drivers.ble.backends import BleBackends
    from drivers.ble.backfill import BackfillStatistics

log = logging.getLogger(__name__)

_DECODE_LOG_INTERVAL_S: Final = 10.0

# characteristic -> the vitals stream its readings belong to
VITAL_STREAMS: Final = {
    uuids.HEART_RATE_MEASUREMENT: "heart_rate",
    uuids.PLX_CONTINUOUS: "spo2",
    uuids.PLX_SPOT_CHECK: "spo2_spot",
    uuids.BLOOD_PRESSURE_MEASUREMENT: "blood_pressure",
    uuids.TEMPERATURE_MEASUREMENT: "temperature",
    uuids.BATTERY_LEVEL: "battery",
}
# streams whose readings carry the device's own timestamp: the same reading received live and
# fetched from the device's records again is recognised by it
_TIMESTAMPED: Final = frozenset(r.stream for r in RECORDED.values())
_INFO_STRINGS: Final = {
    uuids.MANUFACTURER_NAME: "manufacturer",
    uuids.MODEL_NUMBER: "model",
    uuids.SERIAL_NUMBER: "serial",
    uuids.FIRMWARE_REVISION: "firmware",
}


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    """What the link needs to know of one configured device."""

    device_id: str
    address: str
    pmd_streams: tuple[pmd.StreamSettings, ...] = ()


@dataclass(frozen=True, slots=True)
class LinkTimings:
    """Every radio await is bounded; reconnects back off exponentially with full jitter.

    A watched stream (heart rate, PMD) silent for ``stream_silence_s`` while connected is
    subscribed again; silent for another ``stream_silence_s``, the link is dropped and rebuilt.
    """

    scan_timeout_s: float = 10.0
    connect_timeout_s: float = 10.0
    gatt_timeout_s: float = 5.0
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0
    notification_queue_max: int = 1000
    stream_silence_s: float = 10.0
    watchdog_interval_s: float = 1.0


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
    resubscribes: int
    watchdog_reconnects: int
    device_info: dict[str, str]
    clock_offset_s: float | None
    clock_drift_ppm: float | None
    streams: tuple[StreamStatistics, ...]
    backfill: BackfillStatistics | None = None  # devices that keep records (RACP)


@dataclass(frozen=True, slots=True)
class _Notification:
    uuid: str
    data: bytearray
    received_s: float


@dataclass(frozen=True, slots=True)
class _Event:
    """A link event, queued in order with the notifications.

    ``link_lost``, ``silent`` (a stream stalled) or ``backfill_done`` (the record transfer
    ended: the live readings it held back go on).
    """

    kind: str
    stream: str | None = None


@dataclass(slots=True)
class _Session:
    """What one connection subscribed to, for the watchdog."""

    watched: dict[str, float] = field(default_factory=dict)  # stream -> last frame (monotonic)
    notify_uuid: dict[str, str] = field(default_factory=dict)  # stream -> characteristic
    started_s: float = 0.0
    stalled: str | None = None


class DeviceLink:
    """Keeps one device connected and turns its notifications into frames, forever.

    Args:
        spec: The device.
        backends: bleak backend classes (``None`` members: the platform's own).
        emit: Where frames go; awaited, so a slow consumer slows decoding, not the radio.
        timings: Timeouts, backoff and watchdog settings.
        clock: UTC epoch seconds now (injectable: tests and clock-trust checks).
        connection_slots: Shared by every link of one adapter; a session holds one slot.
        adapter: The adapter's watch, told of every scan and advertisement (stall recovery).
        record_cursor: For a stream the device keeps records of, the sequence number of the
            newest record the outbox holds (``None``: none); with it, each connect fetches
            the records that follow (backfill). Without it, records are not fetched.
        utc: UTC epoch seconds now: places a device's records when its clock cannot be read.
    """

    def __init__(
        self,
        spec: DeviceSpec,
        backends: BleBackends,
        emit: Callable[[Frame], Awaitable[None]],
        timings: LinkTimings | None = None,
        *,
        clock: Callable[[], float] = time.time,
        connection_slots: asyncio.Semaphore | None = None,
        adapter: AdapterWatch | None = None,
        record_cursor: Callable[[str], Awaitable[int | None]] | None = None,
        utc: Callable[[], float] = time.time,
    ) -> None:
        self.spec = spec
        self._log = logging.LoggerAdapter(log, {"device_id": spec.device_id})
        self._backends = backends
        self._emit = emit
        self._timings = timings or LinkTimings()
        self._clock = clock
        self._slots = connection_slots
        self._adapter = adapter
        self._queue: asyncio.Queue[_Notification | _Event] = asyncio.Queue(
            self._timings.notification_queue_max
        )
        self._pmd_settings = {s.measurement: s for s in spec.pmd_streams}
        self._trackers: dict[str, StreamTracker] = {
            s.measurement: StreamTracker(spec.device_id, s.measurement, s.sample_rate_hz)
            for s in spec.pmd_streams
        }
        self._device_clock = DeviceClock()
        self._utc = utc
        # the clock that stamps stored records (read at connect, and in live timestamps)
        self._record_clock = DeviceClock()
        self._records = (
            RecordAccess(
                spec.device_id, record_cursor, answer_timeout_s=self._timings.gatt_timeout_s
            )
            if record_cursor is not None
            else None
        )
        self._transfer: Transfer | None = None
        self._held: list[_Notification] = []  # live readings of the recorded stream, meanwhile
        self._open_gaps: dict[str, list[GapMarker]] = {}  # gaps the device's records may fill
        self._session = _Session()
        self._connected = False
        self._connects = 0
        self._links_lost = 0
        self._notifications = 0
        self._unattributed_errors = 0
        self._dropped = 0
        self._resubscribes = 0
        self._watchdog_reconnects = 0
        self._battery_pct: int | None = None
        self._rssi_dbm: int | None = None
        self._device_info: dict[str, str] = {}
        self._last_decode_log_s = -_DECODE_LOG_INTERVAL_S

    def statistics(self) -> LinkStatistics:
        """A snapshot of the link's state and counters."""
        trackers = self._trackers.values()
        return LinkStatistics(
            device_id=self.spec.device_id,
            connected=self._connected,
            connects=self._connects,
            links_lost=self._links_lost,
            notifications=self._notifications,
            decode_errors=self._unattributed_errors + sum(t.decode_errors for t in trackers),
            dropped_queue_full=self._dropped,
            readings=sum(t.units for t in trackers if t.rate_hz is None),
            samples=sum(t.units for t in trackers if t.rate_hz is not None),
            battery_pct=self._battery_pct,
            rssi_dbm=self._rssi_dbm,
            resubscribes=self._resubscribes,
            watchdog_reconnects=self._watchdog_reconnects,
            device_info=dict(self._device_info),
            clock_offset_s=self._device_clock.offset_s,
            clock_drift_ppm=self._device_clock.drift_ppm,
            streams=tuple(t.statistics() for t in trackers),
            backfill=replace(self._records.statistics) if self._records else None,
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
            if self._transfer is not None:  # the live readings it held back go on too
                await self._finish_transfer(self._transfer)

    async def _supervise(self) -> None:
        attempt = 0
        while True:
            try:
                await self._session_once()
                attempt = 0
            except (BleakError, DeviceNotFound, TimeoutError, OSError) as exc:
                # OSError: bleak's BlueZ backend raises FileNotFoundError without D-Bus.
                self._log.warning("%s: %s", self.spec.device_id, exc or type(exc).__name__)
            attempt += 1
            await asyncio.sleep(self._backoff_s(attempt))

    def _backoff_s(self, attempt: int) -> float:
        t = self._timings
        ceiling = min(t.reconnect_max_s, t.reconnect_min_s * 2 ** min(attempt - 1, 30))
        return random.uniform(0.0, ceiling)

    async def _session_once(self) -> None:
        """One connection, from scan to link loss, holding a connection slot throughout."""
        async with self._slots or contextlib.nullcontext():
            device = await self._find()
            t = self._timings
            lost = asyncio.Event()
            client = BleakClient(
                device,
                disconnected_callback=lambda _client: lost.set(),
                timeout=t.connect_timeout_s,
                backend=self._backends.client,
            )
            async with asyncio.timeout(t.connect_timeout_s):
                await client.connect()
            self._session = _Session(started_s=self._clock())
            try:
                self._connected = True
                self._connects += 1
                self._log.info("%s: connected to %s", self.spec.device_id, self.spec.address)
                async with asyncio.timeout(t.gatt_timeout_s):
                    await self._subscribe(client)
                async with asyncio.TaskGroup() as tg:
                    tasks = [
                        tg.create_task(
                            self._watchdog(client, lost),
                            name=f"wgw[{self.spec.device_id}].watchdog",
                        )
                    ]
                    if self._transfer is not None:
                        tasks.append(
                            tg.create_task(
                                self._backfill(client, self._transfer),
                                name=f"wgw[{self.spec.device_id}].backfill",
                            )
                        )
                    await lost.wait()
                    for task in tasks:
                        task.cancel()
                if self._session.stalled is not None:
                    self._watchdog_reconnects += 1
                    self._log.warning(
                        "%s: %s stayed silent after a new subscription; reconnecting",
                        self.spec.device_id,
                        self._session.stalled,
                    )
                else:
                    self._links_lost += 1
                    self._log.warning("%s: link lost", self.spec.device_id)
            finally:
                self._connected = False
                self._end_transfer(self._transfer)  # a link lost while subscribing, too
                self._end_session()
                with contextlib.suppress(BleakError, TimeoutError):
                    async with asyncio.timeout(t.gatt_timeout_s):
                        await client.disconnect()

    def _end_session(self) -> None:
        duration_s = max(0.0, self._clock() - self._session.started_s)
        for tracker in self._trackers.values():
            if tracker.rate_hz is not None:
                tracker.active_s += duration_s
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(_Event("link_lost"))

    async def _find(self) -> BLEDevice:
        """Scan until the device advertises (taking its RSSI), within the scan timeout."""
        found: asyncio.Future[BLEDevice] = asyncio.get_running_loop().create_future()
        wanted = self.spec.address.upper()

        def on_advert(device: BLEDevice, adv: AdvertisementData) -> None:
            if self._adapter is not None:
                self._adapter.advert_seen()
            if device.address.upper() == wanted and not found.done():
                self._rssi_dbm = adv.rssi
                found.set_result(device)

        timeout_s = self._timings.scan_timeout_s
        watch = self._adapter.scanning() if self._adapter else contextlib.nullcontext()
        scanner = BleakScanner(on_advert, backend=self._backends.scanner)
        try:
            with watch:
                try:
                    await scanner.start()
                except (BleakError, OSError):
                    if self._adapter is not None:
                        self._adapter.scan_failed()
                    raise
                try:
                    async with asyncio.timeout(timeout_s):
                        return await found
                finally:
                    await scanner.stop()
        except TimeoutError:
            raise DeviceNotFound(self.spec.address, timeout_s) from None

    async def _subscribe(self, client: BleakClient) -> None:
        services = client.services
        await self._read_device_clock(client)
        await self._subscribe_records(client)
        for uuid, key in _INFO_STRINGS.items():
            if key not in self._device_info and services.get_characteristic(uuid) is not None:
                with contextlib.suppress(DecodeError):
                    raw = await client.read_gatt_char(uuid)
                    self._device_info[key] = decode_device_information_string(raw)
        if services.get_characteristic(uuids.BATTERY_LEVEL) is not None:
            with contextlib.suppress(DecodeError):
                self._battery_pct = decode_battery_level(
                    await client.read_gatt_char(uuids.BATTERY_LEVEL)
                )
        now = time.monotonic()
        for uuid, stream in VITAL_STREAMS.items():
            char = services.get_characteristic(uuid)
            if char is None or not {"notify", "indicate"} & set(char.properties):
                continue
            self._tracker(stream)
            await client.start_notify(uuid, self._on_notify)
            self._session.notify_uuid[stream] = uuid
            if stream == "heart_rate":
                self._session.watched[stream] = now
        if self.spec.pmd_streams and services.get_characteristic(pmd.PMD_DATA) is not None:
            await client.start_notify(pmd.PMD_CONTROL_POINT, self._on_notify)
            await client.start_notify(pmd.PMD_DATA, self._on_notify)
            for settings in self.spec.pmd_streams:
                await client.write_gatt_char(
                    pmd.PMD_CONTROL_POINT, pmd.start_command(settings), response=True
                )
                self._session.watched[settings.measurement] = now

    async def _read_device_clock(self, client: BleakClient) -> None:
        """The device's clock now (Current Time), to place the records it keeps."""
        if client.services.get_characteristic(uuids.CURRENT_TIME) is None:
            return
        try:
            raw = await client.read_gatt_char(uuids.CURRENT_TIME)
            received_s = self._clock()
            device_s = decode_current_time(raw).epoch_s()
        except (BleakError, DecodeError) as exc:  # the records go by our clock, then
            self._log.warning("%s: unreadable Current Time: %s", self.spec.device_id, exc)
            return
        if device_s is not None:
            self._record_clock.observe(device_s, received_s)

    async def _subscribe_records(self, client: BleakClient) -> None:
        """Get ready to fetch the records of the device's recorded stream (backfill).

        Live readings of that stream are held back from here until the transfer ends.
        """
        services = client.services
        if self._transfer is not None:  # the last link's: the decode loop is winding it up
            await self._transfer.finished.wait()
        if (
            self._records is None
            or services.get_characteristic(uuids.RECORD_ACCESS_CONTROL_POINT) is None
        ):
            return
        for recorded in RECORDED.values():
            if services.get_characteristic(recorded.record_uuid) is None:
                continue
            self._transfer = Transfer(recorded)
            await client.start_notify(uuids.RECORD_ACCESS_CONTROL_POINT, self._on_notify)
            if recorded.record_uuid != recorded.live_uuid:  # else the live subscription
                await client.start_notify(recorded.record_uuid, self._on_notify)
            return

    async def _backfill(self, client: BleakClient, transfer: Transfer) -> None:
        """The record transfer of this connection; the decode loop winds it up."""
        assert self._records is not None
        try:
            transfer.outcome = await self._records.run(client, transfer)
        finally:
            self._end_transfer(transfer)

    def _end_transfer(self, transfer: Transfer | None) -> None:
        """The procedure is over (or never started: the link went first); wake the decode loop."""
        if transfer is None or transfer.ended:
            return
        transfer.ended = True
        with contextlib.suppress(asyncio.QueueFull):  # else the next item wakes it
            self._queue.put_nowait(_Event("backfill_done"))

    async def _finish_transfer(self, transfer: Transfer) -> None:
        """The transfer ended: fill the gaps its records cover, then the held live readings."""
        self._transfer = None
        held, self._held = self._held, []
        tracker = self._tracker(transfer.stream)
        open_gaps = self._open_gaps.setdefault(transfer.stream, [])
        if transfer.outcome == "complete":
            covered_s = transfer.covered_from_s()
            filled = [g for g in open_gaps if covered_s is not None and g.t0_s >= covered_s]
            open_gaps.clear()  # filled now, or never: the device no longer holds them
            if covered_s != float("inf"):  # else the records prove nothing
                tracker.complete()
            for gap in filled:
                tracker.filled(gap)
                await self._emit(replace(gap, filled=True))
            if transfer.records:
                self._log.info(
                    "%s: %d %s records fetched; %d gap(s) filled",
                    self.spec.device_id,
                    transfer.records,
                    transfer.stream,
                    len(filled),
                )
        for note in held:
            await self._handle(note)
        transfer.finished.set()

    def _tracker(self, stream: str) -> StreamTracker:
        tracker = self._trackers.get(stream)
        if tracker is None:
            tracker = self._trackers[stream] = StreamTracker(self.spec.device_id, stream)
        return tracker

    async def _watchdog(self, client: BleakClient, lost: asyncio.Event) -> None:
        """Catch streams that go silent while the link stays up (a known strap failure).

        First a new subscription (or PMD start); if the stream stays silent, end the session
        (``lost``) so that the link is rebuilt.
        """
        t = self._timings
        retried_at: dict[str, float] = {}
        while True:
            await asyncio.sleep(t.watchdog_interval_s)
            now = time.monotonic()
            for stream, last_frame in list(self._session.watched.items()):
                if last_frame > retried_at.get(stream, now):
                    del retried_at[stream]  # data came back after the new subscription
                if now - max(last_frame, retried_at.get(stream, last_frame)) < t.stream_silence_s:
                    continue
                if stream in retried_at:
                    self._session.stalled = stream
                    lost.set()
                    return
                retried_at[stream] = now
                self._resubscribes += 1
                self._log.warning(
                    "%s: %s silent for %.1f s; subscribing again",
                    self.spec.device_id,
                    stream,
                    now - last_frame,
                )
                with contextlib.suppress(asyncio.QueueFull):
                    self._queue.put_nowait(_Event("silent", stream))
                try:
                    async with asyncio.timeout(t.gatt_timeout_s):
                        await self._resubscribe(client, stream)
                except (BleakError, TimeoutError):
                    lost.set()
                    return

    async def _resubscribe(self, client: BleakClient, stream: str) -> None:
        settings = self._pmd_settings.get(stream)
        if settings is not None:
            await client.write_gatt_char(
                pmd.PMD_CONTROL_POINT, pmd.start_command(settings), response=True
            )
            return
        uuid = self._session.notify_uuid[stream]
        await client.stop_notify(uuid)
        await client.start_notify(uuid, self._on_notify)

    def _on_notify(self, characteristic: BleakGATTCharacteristic, data: bytearray) -> None:
        """Bleak's callback: stamp, enqueue, count; never raise."""
        self._notifications += 1
        try:
            self._queue.put_nowait(_Notification(characteristic.uuid, data, self._clock()))
        except asyncio.QueueFull:
            self._dropped += 1

    async def _decode_loop(self) -> None:
        while True:
            await self._handle(await self._queue.get())

    async def _handle(self, item: _Notification | _Event) -> None:
        transfer = self._transfer
        if transfer is not None and transfer.ended:
            await self._finish_transfer(transfer)
            transfer = None
        if isinstance(item, _Event):
            if item.kind == "silent" and item.stream is not None:
                self._tracker(item.stream).mark("silent")
            elif item.kind == "link_lost":
                for tracker in self._trackers.values():
                    tracker.link_lost()
            return
        as_record = transfer is not None and item.uuid == transfer.recorded.record_uuid
        if transfer is not None and item.uuid == transfer.recorded.live_uuid and not as_record:
            self._held.append(item)  # after the records, in time order
            return
        try:
            frames = self._record(item) if as_record else self._decode(item)
        except DecodeError as exc:
            self._count_malformed(item, exc)
            if transfer is not None and item.uuid == transfer.recorded.record_uuid:
                transfer.damaged += 1  # a record is missing: this transfer proves nothing
            return
        for frame in frames:
            await self._emit(frame)

    def _count_malformed(self, note: _Notification, exc: DecodeError) -> None:
        recorded = RECORDED.get(note.uuid)
        stream = VITAL_STREAMS.get(note.uuid) or (recorded.stream if recorded else None)
        if stream is None and note.uuid == pmd.PMD_DATA and note.data:
            stream = pmd.MEASUREMENT_TYPES.get(note.data[0])
        if stream is not None and stream in self._trackers:
            self._trackers[stream].malformed()
        else:
            self._unattributed_errors += 1
        now = time.monotonic()
        if now - self._last_decode_log_s >= _DECODE_LOG_INTERVAL_S:
            self._last_decode_log_s = now
            self._log.warning("%s: dropped a malformed notification: %s", self.spec.device_id, exc)

    def _decode(self, note: _Notification) -> list[Frame]:
        stream = VITAL_STREAMS.get(note.uuid)
        if stream is not None:
            return self._vital(stream, note)
        if note.uuid == uuids.RECORD_ACCESS_CONTROL_POINT:
            if self._records is not None:
                self._records.answered(note.data)
            return []
        if note.uuid in RECORDED:  # a record after its transfer ended: still one
            return self._record(note)
        if note.uuid == pmd.PMD_DATA:
            return self._waveform(note)
        if note.uuid == pmd.PMD_CONTROL_POINT:
            response = pmd.decode_control_point_response(note.data)
            if not response.ok and response.status != pmd.STATUS_ALREADY_IN_STATE:
                self._log.error(
                    "%s: device refused PMD %s (op %d): %s",
                    self.spec.device_id,
                    response.measurement,
                    response.op_code,
                    response.status_name,
                )
        return []

    def _vital(self, stream: str, note: _Notification) -> list[Frame]:
        characteristic = lookup(note.uuid)
        assert characteristic is not None
        values = characteristic.decode_json(bytes(note.data))
        if stream == "battery":
            battery = values["battery_pct"]
            self._battery_pct = battery if isinstance(battery, int) else None
        tracker = self._tracker(stream)
        if stream in self._session.watched:
            self._session.watched[stream] = time.monotonic()
        key = self._device_timestamp(stream, values, note.received_s)
        gap = tracker.data(note.received_s, note.received_s, 1)
        if gap is not None and stream in _TIMESTAMPED:
            self._open_gaps.setdefault(stream, []).append(gap)
        reading = VitalReading(
            self.spec.device_id, stream, tracker.next_seq(), note.received_s, values, source_key=key
        )
        return [gap, reading] if gap else [reading]

    def _device_timestamp(
        self, stream: str, values: dict[str, object], received_s: float
    ) -> str | None:
        """The reading's own timestamp where its stream is recorded (it teaches the clock)."""
        stamp = values.get("timestamp") if stream in _TIMESTAMPED else None
        if not isinstance(stamp, str):
            return None
        device_s = _epoch_s(stamp)
        if device_s is not None:
            self._record_clock.observe(device_s, received_s)
        return stamp

    def _record(self, note: _Notification) -> list[Frame]:
        """One record the device kept, fetched over RACP: a backfilled reading."""
        stream = RECORDED[note.uuid].stream
        number, values = decode_record(note.uuid, note.data)
        stamp = values.get("timestamp")
        device_s = _epoch_s(stamp) if isinstance(stamp, str) else None
        tracker = self._tracker(stream)
        if device_s is None:  # a record with no time cannot be placed: counted, dropped
            tracker.malformed()
            return []
        if self._record_clock.ready:
            time_s = self._record_clock.to_utc(device_s)
        else:  # no reading of its clock yet: take it for UTC
            time_s = device_s + self._clock() - self._utc()
        transfer = self._transfer
        if transfer is not None and transfer.stream == stream:
            transfer.record(number, time_s)
            if transfer.probing:  # only its number was wanted: it comes again, in order
                return []
            if number is None and transfer.cursor is not None and device_s <= transfer.cursor:
                return []  # by time: the outbox holds it already
        if number is None:  # by time: the cursor is the newest device timestamp held
            number = int(device_s)
        if self._records is not None:
            self._records.statistics.records += 1
        frames: list[Frame] = []
        last_s = tracker.last_end_s
        if last_s is None or time_s > last_s:  # older ones came live (the outbox drops them)
            gap = tracker.data(time_s, time_s, 1, backfilled=True)
            if gap is not None:
                self._open_gaps.setdefault(stream, []).append(gap)
                frames.append(gap)
        frames.append(
            VitalReading(
                self.spec.device_id,
                stream,
                tracker.next_seq(),
                time_s,
                values,
                backfilled=True,
                source_key=str(stamp),
                record_number=number,
            )
        )
        return frames

    def _waveform(self, note: _Notification) -> list[Frame]:
        measurement = pmd.MEASUREMENT_TYPES.get(note.data[0]) if note.data else None
        settings = self._pmd_settings.get(measurement or "")
        frame = pmd.decode_pmd_data(
            note.data,
            channels=settings.channels if settings else None,
            resolution_bits=settings.resolution_bits if settings else None,
        )
        if settings is None:
            return []  # a stream nobody asked for
        n = frame.samples.shape[0]
        rate = float(settings.sample_rate_hz)
        device_last_s = frame.last_sample_utc_s
        self._device_clock.observe(device_last_s, note.received_s)
        t_last = self._device_clock.to_utc(device_last_s)
        t0 = t_last - (n - 1) / rate
        tracker = self._trackers[frame.measurement]
        if frame.measurement in self._session.watched:
            self._session.watched[frame.measurement] = time.monotonic()
        gap = tracker.data(t0, t_last + 1.0 / rate, n, device_t0_s=device_last_s - (n - 1) / rate)
        chunk = WaveformChunk(
            self.spec.device_id, frame.measurement, tracker.next_seq(), t0, rate, frame.samples
        )
        return [gap, chunk] if gap else [chunk]


def _epoch_s(stamp: str) -> float | None:
    """A device timestamp (``YYYY-MM-DDTHH:MM:SS``, no zone) in seconds, read as UTC."""
    try:
        return datetime.fromisoformat(stamp).replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None
