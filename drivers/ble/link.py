"""One supervised BLE session per configured device: scan, connect, subscribe, reconnect.

bleak callbacks only stamp the notification and ``put_nowait`` it on a bounded queue; one task
decodes and hands frames on (and may wait there: back-pressure stops at this queue, whose full
policy is drop-newest with a counter, since the radio cannot be paused). Link losses and
watchdog actions travel through the same queue, so gaps are placed exactly where they happened
in the stream of notifications. The parts: ``decoding`` (bytes -> values, pure), ``framing``
(values -> frames in time), ``record_transfers`` (backfill), ``watchdog``, ``link_errors``
(the wait after each failure, by its class).

Size: ``DeviceLink`` is a session's life (scan, connect, subscribe, the decode loop); each step
delegates to a part, and the lifecycle reads best in one place.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Final

from bleak import BleakClient
from bleak.exc import BleakError

from drivers.backoff import Backoff
from drivers.ble import decoding, link_errors
from drivers.ble.decoding import VITAL_STREAMS
from drivers.ble.framing import Framer
from drivers.ble.gatt_table import find
from drivers.ble.link_spec import DeviceSpec, LinkStatistics, LinkTimings
from drivers.ble.movesense_streams import MovesenseStreams, streams_of
from drivers.ble.mtu import agreed_mtu
from drivers.ble.pmd_start import PmdStarter
from drivers.ble.record_transfers import RecordTransfers
from drivers.ble.shared_scan import SharedScan
from drivers.ble.watchdog import Watchdog
from drivers.bounded import BoundedQueue, FullPolicy
from drivers.errors import DecodeError, DeviceNotFound
from drivers.gatt import uuids
from drivers.gatt.battery import decode_battery_level
from drivers.gatt.current_time import CurrentTime, encode_current_time
from drivers.gatt.device_information import decode_device_information_string
from drivers.gatt.fields import DateTime
from drivers.movesense import gsp
from drivers.polar import pmd

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from bleak.backends.characteristic import BleakGATTCharacteristic
    from bleak.backends.device import BLEDevice

    from drivers.ble.adapter import AdapterWatch
    from drivers.ble.backends import BleBackends
    from drivers.frames import Frame

log = logging.getLogger(__name__)

_INFO_STRINGS: Final = {
    uuids.MANUFACTURER_NAME: "manufacturer",
    uuids.MODEL_NUMBER: "model",
    uuids.SERIAL_NUMBER: "serial",
    uuids.FIRMWARE_REVISION: "firmware",
}
_WATCHED_VITALS: Final = frozenset({"heart_rate"})
_ADJUST_MANUAL: Final = 0x01  # Current Time's adjust reason: a manual time update


@dataclass(frozen=True, slots=True)
class _Notification:
    uuid: str
    data: bytes
    received_s: float


@dataclass(frozen=True, slots=True)
class _Event:
    """A link event, queued in order with the notifications.

    ``link_lost``, ``silent`` (a stream stalled) or ``backfill_done`` (the record transfer
    ended: the live readings it held back go on).
    """

    kind: str
    stream: str | None = None


class DeviceLink:
    """Keeps one device connected and its notifications flowing into frames, forever.

    Args:
        spec: The device.
        backends: bleak backend classes (``None`` members: the platform's own).
        emit: Where frames go; awaited, so a slow consumer slows decoding, not the radio.
        timings: Timeouts, backoff and watchdog settings.
        now: The time that stamps notifications (the daemon gives its monotonic-based clock
            and turns it into UTC at storage; tests give a simulated clock).
        connection_slots: Shared by every link of one adapter; a session holds one slot.
        connecting: Shared by every link of one adapter; held for each connect.
        scan: The adapter's scan, shared by its links (None: one of this link's own).
        adapter: The adapter's watch, told of every scan and advertisement (stall recovery).
        utc: UTC epoch seconds now: places a device's records when its clock cannot be read.
        note: Told what a recording's reader needs to know: the settings each PMD stream was
            started with, at its first start and when they change (the daemon stores a marker).
    """

    def __init__(
        self,
        spec: DeviceSpec,
        backends: BleBackends,
        emit: Callable[[Frame], Awaitable[None]],
        timings: LinkTimings | None = None,
        *,
        now: Callable[[], float] = time.time,
        connection_slots: asyncio.Semaphore | None = None,
        connecting: asyncio.Lock | None = None,
        scan: SharedScan | None = None,
        adapter: AdapterWatch | None = None,
        utc: Callable[[], float] = time.time,
        note: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self.spec = spec
        t = self._timings = timings or LinkTimings()
        self._log = logging.LoggerAdapter(log, {"device_id": spec.device_id})
        self._backends = backends
        self._emit = emit
        self._now = now
        self._utc = utc
        self._note = note
        self.clock_sets = 0  # times the device's clock was set (``spec.set_clock``)
        self._told_clock = False
        self._slots = connection_slots
        self._connecting = connecting
        self._own_scan = scan is None  # closed when :meth:`run` ends
        self._scan = scan or SharedScan(backends, adapter)
        self._adapter = adapter
        self._queue: BoundedQueue[_Notification | _Event] = BoundedQueue(
            t.notification_queue_max, FullPolicy.DROP_NEWEST
        )
        self._pmd = PmdStarter(spec.device_id, spec.pmd_streams, self._log, t.gatt_timeout_s)
        self._movesense = MovesenseStreams(spec.device_id, spec.movesense, self._log)
        self._gsp_command: BleakGATTCharacteristic | None = None
        self._mtu: int | None = None
        self._told_encryption = False  # the log said what an encrypted device needs
        self._watchdog = Watchdog(
            spec.device_id,
            silence_s=t.stream_silence_s,
            interval_s=t.watchdog_interval_s,
            gatt_timeout_s=t.gatt_timeout_s,
            log=self._log,
        )
        # the stored data's ends on this link's time line (``now``'s)
        to_now_s = now() - utc()
        resumed = {stream: end_s + to_now_s for stream, end_s in (spec.stored_ends or {}).items()}
        self._framer = Framer(
            spec.device_id, spec.pmd_streams, self._watchdog.heard, self._log, resumed
        )
        for stream, rate in self._movesense.rates().items():
            self._framer.tracker(stream).rate_hz = rate
        self._transfers = (
            RecordTransfers(
                self._framer,
                spec.record_cursors,
                emit=emit,
                wake=lambda: self._signal(_Event("backfill_done")),
                now=now,
                utc=utc,
                answer_timeout_s=t.gatt_timeout_s,
                log=self._log,
            )
            if spec.record_cursors is not None
            else None
        )
        self._reconnects = link_errors.Reconnects(Backoff(t.reconnect_min_s, t.reconnect_max_s))
        # this connection's: stream -> the characteristic it notifies on; the PMD control point
        self._notifying: dict[str, BleakGATTCharacteristic] = {}
        self._pmd_control: BleakGATTCharacteristic | None = None
        self._connected = False
        self._connects = 0
        self._links_lost = 0
        self._notifications = 0
        self._watchdog_reconnects = 0
        self._rssi_dbm: int | None = None
        self._device_info: dict[str, str] = {}

    def statistics(self) -> LinkStatistics:
        """A snapshot of the link's state and counters."""
        framer = self._framer
        trackers = framer.trackers.values()
        return LinkStatistics(
            device_id=self.spec.device_id,
            connected=self._connected,
            connects=self._connects,
            links_lost=self._links_lost,
            notifications=self._notifications,
            decode_errors=framer.unattributed_errors
            + sum(t.decode_errors for t in trackers)
            + self._movesense.broken,
            dropped_queue_full=self._queue.dropped,
            queue_high_water=self._queue.high_water,
            readings=sum(t.units for t in trackers if t.rate_hz is None),
            samples=sum(t.units for t in trackers if t.rate_hz is not None),
            battery_pct=framer.battery_pct,
            rssi_dbm=self._rssi_dbm,
            resubscribes=self._watchdog.resubscribes,
            pmd_restarts=self._watchdog.restarts,
            watchdog_reconnects=self._watchdog_reconnects,
            device_info=dict(self._device_info),
            clock_offset_s=framer.device_clock.offset_s,
            clock_drift_ppm=framer.device_clock.drift_ppm,
            streams=tuple(t.statistics() for t in trackers),
            backfill=self._transfers.statistics() if self._transfers else None,
            failures=dict(self._reconnects.by_class),
            mtu=self._mtu,
            not_started={**self._pmd.not_started, **self._movesense.not_started},
            pmd=self._pmd.started_json(),
            address=self.spec.address,
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
            if self._own_scan:
                await self._scan.close()
            while not self._queue.empty():
                await self._handle(self._queue.get_nowait())
            if self._transfers is not None:  # the live readings it held back go on too
                self._transfers.end(self._transfers.transfer)
                await self._transfers.wind_up(self._handle_notification)

    async def _supervise(self) -> None:
        while True:
            try:
                await self._session_once()
                error_class = link_errors.LINK_LOST
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is None or task.cancelling():
                    raise
                # A backend's own cancellation leaking out of an operation (bumble's, when the
                # link drops mid-request): left alone it would end this task without a word.
                self._log.warning("%s: a Bluetooth operation was cancelled", self.spec.device_id)
                error_class = link_errors.OTHER
            except (BleakError, DeviceNotFound, TimeoutError, OSError) as exc:
                # OSError: bleak's BlueZ backend raises FileNotFoundError without D-Bus.
                error_class = link_errors.classify(exc)
                if error_class is link_errors.ENCRYPTION:
                    self._encryption_failed(exc)
                else:
                    self._log.warning(
                        "%s: %s (%s)",
                        self.spec.device_id,
                        exc or type(exc).__name__,
                        error_class.name,
                    )
            await asyncio.sleep(self._reconnects.delay_after(error_class))

    def _encryption_failed(self, exc: BaseException) -> None:
        """Say once (until a link works again) what the device wants and what to do."""
        if self._told_encryption:
            self._log.debug("%s: %s (encryption)", self.spec.device_id, exc)
            return
        self._told_encryption = True
        if self.spec.pairing == "none":
            advice = (
                "it needs an encrypted link: set pairing: just_works for this device in the"
                " config (or pairing: passkey with the passkey the device shows) and restart"
            )
        else:
            advice = (
                "pairing did not give an encrypted link: check the passkey in the config, or"
                " clear the device's pairings (its manual says how) so it pairs afresh"
            )
        self._log.error("%s: %s: %s (%s)", self.spec.device_id, self.spec.address, advice, exc)

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
            # one connect at a time per adapter: a controller takes one LE Create Connection
            # at a time (BlueZ answers a second with org.bluez.Error.InProgress)
            async with self._connecting or contextlib.nullcontext():
                async with asyncio.timeout(t.connect_timeout_s + t.connect_safety_s):
                    await client.connect()
            started_s = self._now()
            self._watchdog.new_session()
            try:
                self._connected = True
                self._connects += 1
                self._reconnects.connected()
                self._log.info("%s: connected to %s", self.spec.device_id, self.spec.address)
                if self.spec.pairing != "none":  # bonded: the stack re-encrypted already
                    async with asyncio.timeout(t.connect_timeout_s):
                        await client.pair(passkey=self.spec.passkey)
                async with asyncio.timeout(t.gatt_timeout_s):
                    await self._subscribe(client)
                self._told_encryption = False
                await self._connected_until_lost(client, lost)
            finally:
                self._connected = False
                if self._transfers is not None:  # a link lost while subscribing, too
                    self._transfers.end(self._transfers.transfer)
                self._framer.connected_for(max(0.0, self._now() - started_s))
                self._signal(_Event("link_lost"))
                with contextlib.suppress(BleakError, TimeoutError):
                    async with asyncio.timeout(t.gatt_timeout_s):
                        await client.disconnect()

    async def _connected_until_lost(self, client: BleakClient, lost: asyncio.Event) -> None:
        """The watchdog and this connection's record transfer, until the link goes."""

        async def watch() -> None:
            await self._watchdog.run(
                lambda stream: self._resubscribe(client, stream),
                lambda stream: self._signal(_Event("silent", stream)),
                lost,
            )
            lost.set()

        name = f"wgw[{self.spec.device_id}]"
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(watch(), name=f"{name}.watchdog")]
            transfers = self._transfers
            if transfers is not None and transfers.transfer is not None:
                run = transfers.run(client, transfers.transfer)
                tasks.append(tg.create_task(run, name=f"{name}.backfill"))
            try:
                await lost.wait()
            finally:
                lost.set()  # the watchdog ends at its next look, even if its cancel is lost
                for task in tasks:
                    task.cancel()
        if self._watchdog.stalled is not None:
            self._watchdog_reconnects += 1
            self._log.warning(
                "%s: %s stayed silent after a new subscription; reconnecting",
                self.spec.device_id,
                self._watchdog.stalled,
            )
        else:
            self._links_lost += 1
            self._log.warning("%s: link lost", self.spec.device_id)

    def _signal(self, event: _Event) -> None:
        self._queue.offer(event)  # dropped (counted) only by a queue already full

    async def _find(self) -> BLEDevice:
        """Wait for the device's advertisement (taking its RSSI), within the scan timeout."""
        device, adv = await self._scan.find(self.spec.address, self._timings.scan_timeout_s)
        self._rssi_dbm = adv.rssi
        return device

    async def _subscribe(self, client: BleakClient) -> None:
        services = client.services
        self._mtu = await agreed_mtu(client)
        if self._transfers is not None:
            await self._transfers.read_clock(client)
            await self._transfers.prepare(client, self._on_notify)
        for uuid, key in _INFO_STRINGS.items():
            if key in self._device_info:  # read on an earlier connection
                continue
            char = find(services, uuid)
            if char is not None:
                with contextlib.suppress(DecodeError):
                    raw = await client.read_gatt_char(char)
                    self._device_info[key] = decode_device_information_string(raw)
        if self.spec.set_clock:
            await self._set_clock(client)
        battery = find(services, uuids.BATTERY_LEVEL)
        if battery is not None:
            with contextlib.suppress(DecodeError):
                self._framer.battery_pct = decode_battery_level(
                    await client.read_gatt_char(battery)
                )
        self._notifying = {}
        for uuid, stream in VITAL_STREAMS.items():
            char = find(services, uuid)
            if char is None or not {"notify", "indicate"} & set(char.properties):
                continue
            self._framer.tracker(stream)
            await client.start_notify(char, self._on_notify)
            self._notifying[stream] = char
            if stream in _WATCHED_VITALS:
                self._watchdog.watch(stream)
        data = find(services, pmd.PMD_DATA)
        control = find(services, pmd.PMD_CONTROL_POINT, beside=data) if data else None
        self._pmd_control = control
        if self.spec.pmd_streams and data is not None and control is not None:
            await self._start_pmd(client, control, data)
        if self.spec.movesense:
            await self._subscribe_movesense(client)

    async def _subscribe_movesense(self, client: BleakClient) -> None:
        """Subscribe the configured Movesense resources over GSP (or say the device has none)."""
        data = find(client.services, gsp.DATA_CHARACTERISTIC)
        command = find(client.services, gsp.COMMAND, beside=data) if data else None
        self._gsp_command = command
        if data is None or command is None:
            if not self._movesense.not_started:
                self._log.error(
                    "%s: movesense is configured, but the device has no GATT SensorData"
                    " service (is gatt_sensordata_app its firmware?)",
                    self.spec.device_id,
                )
            self._movesense.not_started = dict.fromkeys(self.spec.movesense, "no GSP service")
            return
        await client.start_notify(data, self._on_notify)
        await self._movesense.subscribe(client, command)
        for r in self._movesense.resources.values():
            for stream in streams_of(r):
                if stream != "temperature":  # once a second, and no worse for a pause
                    self._watchdog.watch(stream)

    async def _set_clock(self, client: BleakClient) -> None:
        """Write the host's local time to the device's Current Time, as companion apps do."""
        char = find(client.services, uuids.CURRENT_TIME)
        if char is None or not {"write", "write-without-response"} & set(char.properties):
            if not self._told_clock:
                self._log.warning(
                    "%s: set_clock is on, but the device has no writable Current Time",
                    self.spec.device_id,
                )
                self._told_clock = True
            return
        now = datetime.fromtimestamp(self._utc())  # the host's local time: what a watch shows
        value = CurrentTime(
            DateTime(now.year, now.month, now.day, now.hour, now.minute, now.second),
            now.isoweekday(),
            now.microsecond * 256 // 1_000_000,
            _ADJUST_MANUAL,
        )
        try:
            await client.write_gatt_char(char, encode_current_time(value))
        except BleakError as exc:  # refused: stream all the same (a lost link shows up next)
            if not self._told_clock:
                self._log.warning("%s: setting its clock failed: %s", self.spec.device_id, exc)
                self._told_clock = True
            return
        self.clock_sets += 1

    async def _start_pmd(
        self, client: BleakClient, control: BleakGATTCharacteristic, data: BleakGATTCharacteristic
    ) -> None:
        """Start every configured PMD stream the device offers and the link's MTU can carry."""
        await client.start_notify(control, self._on_notify)
        await client.start_notify(data, self._on_notify)
        for settings in await self._pmd.start(client, control, self._mtu):
            if settings.measurement != "ppi":  # its first interval comes after ~25 s
                self._framer.tracker(settings.measurement).rate_hz = settings.sample_rate_hz
                self._watchdog.watch(settings.measurement)
            news = self._pmd.news(settings.measurement)
            if news is not None and self._note is not None:
                await self._note(news)

    async def _resubscribe(self, client: BleakClient, stream: str) -> None:
        if self._gsp_command is not None and self._movesense.feeds(stream):
            await self._movesense.resubscribe(client, self._gsp_command, stream)
            return
        settings = self._pmd.settings.get(stream)
        if settings is not None and self._pmd_control is not None:
            await client.write_gatt_char(self._pmd_control, pmd.start_command(settings))
            return
        char = self._notifying[stream]
        await client.stop_notify(char)
        await client.start_notify(char, self._on_notify)

    def _on_notify(self, characteristic: BleakGATTCharacteristic, data: bytearray) -> None:
        """Bleak's callback: stamp, enqueue, count; never raise."""
        self._notifications += 1
        self._queue.offer(_Notification(characteristic.uuid, bytes(data), self._now()))

    async def _decode_loop(self) -> None:
        while True:
            await self._handle(await self._queue.get())

    async def _handle(self, item: _Notification | _Event) -> None:
        if self._transfers is not None:
            await self._transfers.wind_up(self._handle_notification)
        if isinstance(item, _Event):
            if item.kind == "silent" and item.stream is not None:
                self._framer.tracker(item.stream).mark("silent")
            elif item.kind == "link_lost":
                self._framer.link_lost()
            return
        await self._handle_notification(item.uuid, item.data, item.received_s)

    async def _handle_notification(self, uuid: str, data: bytes, received_s: float) -> None:
        """Decode, frame and hand on one notification (or hold it back for a transfer)."""
        transfers = self._transfers
        hold, as_record = transfers.routes(uuid) if transfers else (False, False)
        if hold:
            assert transfers is not None
            transfers.hold(uuid, data, received_s)  # after the records, in time order
            return
        try:
            if uuid == gsp.DATA_CHARACTERISTIC and self.spec.movesense:
                frames = self._movesense_frames(data, received_s)
            else:
                decoded = decoding.decode(uuid, data, self._pmd.settings, as_record=as_record)
                frames = self._frames(decoded, received_s)
        except DecodeError as exc:
            self._framer.malformed(uuid, data, exc)
            if transfers is not None:
                transfers.damaged(uuid)  # a record is missing: this transfer proves nothing
            return
        for frame in frames:
            await self._emit(frame)

    def _movesense_frames(self, data: bytes, received_s: float) -> list[Frame]:
        """A GSP notification's frames, once its data is whole.

        Raises:
            DecodeError: It breaks the protocol or its resource's layout.
        """
        frames: list[Frame] = []
        for item in self._movesense.decode(data):
            if isinstance(item, decoding.Vital):
                frames += self._framer.vital(item, received_s)
            else:
                frames += self._framer.samples(
                    item.stream, item.samples, item.rate_hz, item.device_first_s, received_s
                )
        return frames

    def _frames(self, decoded: decoding.Decoded, received_s: float) -> list[Frame]:
        """What a decoded notification becomes.

        Raises:
            DecodeError: A control point's answer is malformed.
        """
        transfers = self._transfers
        match decoded:
            case decoding.Vital():
                frames = self._framer.vital(decoded, received_s)
                if transfers is not None:
                    transfers.opened(frames)
                return frames
            case decoding.Waveform():
                return self._framer.waveform(decoded, received_s)
            case decoding.Record():
                return transfers.record(decoded) if transfers is not None else []
            case decoding.RecordAnswer():
                if transfers is not None:
                    transfers.answered(decoded.data)
            case decoding.PmdStopped():
                for measurement in decoded.measurements:
                    if measurement in self._pmd.settings:
                        self._log.warning(
                            "%s: the device stopped PMD %s itself; starting it again",
                            self.spec.device_id,
                            measurement,
                        )
                        self._framer.tracker(measurement).mark("stopped")
                        self._watchdog.restart(measurement)
            case decoding.PmdAnswer():
                response = decoded.response
                if self._pmd.control.answered(response):
                    return []
                if not response.ok and response.status != pmd.STATUS_ALREADY_IN_STATE:
                    self._log.error(
                        "%s: device refused PMD %s (op %d): %s",
                        self.spec.device_id,
                        response.measurement,
                        response.op_code,
                        response.status_name,
                    )
        return []
