"""A link's record transfers (backfill): each connect's procedure and what it holds back.

The live readings of the stream being fetched wait for its records; the gaps its records may
fill are kept; and the cursor the next transfer starts after is kept here too.
The cursor starts as the device's spec gives it (the newest record the outbox held at start)
and moves with every record handed on; ``RecordAccess`` runs the control point procedure.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from bleak.exc import BleakError

from drivers.ble.backfill import RECORDED, BackfillStatistics, RecordAccess, Transfer
from drivers.ble.framing import TIMESTAMPED, epoch_s
from drivers.ble.gatt_table import find
from drivers.errors import DecodeError
from drivers.frames import Frame, GapMarker, VitalReading
from drivers.gatt import uuids
from drivers.gatt.current_time import decode_current_time

if TYPE_CHECKING:
    import logging
    from collections.abc import Awaitable, Callable, Mapping

    from bleak import BleakClient
    from bleak.backends.characteristic import BleakGATTCharacteristic

    from drivers.ble.decoding import Record
    from drivers.ble.framing import Framer


class RecordTransfers:
    """Backfill for one device link; the link's decode loop feeds it, in notification order."""

    def __init__(
        self,
        framer: Framer,
        cursors: Mapping[str, int | None],
        *,
        emit: Callable[[Frame], Awaitable[None]],
        wake: Callable[[], None],
        now: Callable[[], float],
        utc: Callable[[], float],
        answer_timeout_s: float,
        log: logging.LoggerAdapter[logging.Logger],
    ) -> None:
        self._framer = framer
        self._cursors = dict(cursors)
        self._emit = emit
        self._wake = wake
        self._now = now
        self._utc = utc
        self._log = log
        self._access = RecordAccess(
            framer.device_id, self._cursor, answer_timeout_s=answer_timeout_s
        )
        self.transfer: Transfer | None = None
        self._held: list[tuple[str, bytes, float]] = []  # live readings of the recorded stream
        self._open_gaps: dict[str, list[GapMarker]] = {}  # gaps the device's records may fill

    def statistics(self) -> BackfillStatistics:
        """A copy of the counters."""
        return replace(self._access.statistics)

    async def _cursor(self, stream: str) -> int | None:
        return self._cursors.get(stream)

    async def prepare(
        self,
        client: BleakClient,
        on_notify: Callable[[BleakGATTCharacteristic, bytearray], None],
    ) -> None:
        """Get ready to fetch the records of the device's recorded stream, if it has one.

        Live readings of that stream are held back from here until the transfer ends.
        """
        services = client.services
        if self.transfer is not None:  # the last link's: the decode loop is winding it up
            await self.transfer.finished.wait()
        for recorded in RECORDED.values():
            records = find(services, recorded.record_uuid)
            # the control point of the records' own service (a device may have one per service)
            control = find(services, uuids.RECORD_ACCESS_CONTROL_POINT, beside=records)
            if records is None or control is None:
                continue
            self.transfer = Transfer(recorded, control)
            await client.start_notify(control, on_notify)
            if recorded.record_uuid != recorded.live_uuid:  # else the live subscription
                await client.start_notify(records, on_notify)
            return

    async def run(self, client: BleakClient, transfer: Transfer) -> None:
        """This connection's procedure; the decode loop winds it up."""
        try:
            transfer.outcome = await self._access.run(client, transfer)
        finally:
            self.end(transfer)

    def end(self, transfer: Transfer | None) -> None:
        """The procedure is over (or never started: the link went first); wake the decode loop."""
        if transfer is None or transfer.ended:
            return
        transfer.ended = True
        self._wake()

    def answered(self, data: bytes) -> None:
        """An answer of the control point.

        Raises:
            DecodeError: Not an answer.
        """
        self._access.answered(data)

    def routes(self, uuid: str) -> tuple[bool, bool]:
        """(hold it back, take it as a record) for a notification of ``uuid`` now."""
        transfer = self.transfer
        if transfer is None:
            return False, False
        as_record = uuid == transfer.recorded.record_uuid
        return uuid == transfer.recorded.live_uuid and not as_record, as_record

    def hold(self, uuid: str, data: bytes, received_s: float) -> None:
        """A live reading of the stream being fetched: it goes on after the records."""
        self._held.append((uuid, data, received_s))

    def damaged(self, uuid: str) -> None:
        """A record of the running transfer was malformed: it proves nothing now."""
        transfer = self.transfer
        if transfer is not None and uuid == transfer.recorded.record_uuid:
            transfer.damaged += 1

    def opened(self, frames: list[Frame]) -> None:
        """Live frames: a gap in a recorded stream is one the device's records may fill."""
        for frame in frames:
            if isinstance(frame, GapMarker) and frame.stream in TIMESTAMPED:
                self._open_gaps.setdefault(frame.stream, []).append(frame)

    async def wind_up(self, handle: Callable[[str, bytes, float], Awaitable[None]]) -> None:
        """If the transfer ended: fill the gaps its records cover, then ``handle`` what it held."""
        transfer = self.transfer
        if transfer is None or not transfer.ended:
            return
        self.transfer = None
        held, self._held = self._held, []
        tracker = self._framer.tracker(transfer.stream)
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
                    self._framer.device_id,
                    transfer.records,
                    transfer.stream,
                    len(filled),
                )
        for note in held:
            await handle(*note)
        transfer.finished.set()

    def record(self, record: Record) -> list[Frame]:
        """One record the device kept: a backfilled reading (and the gap before it, if any)."""
        stream, number, values = record.stream, record.number, record.values
        stamp = values.get("timestamp")
        device_s = epoch_s(stamp) if isinstance(stamp, str) else None
        tracker = self._framer.tracker(stream)
        if device_s is None:  # a record with no time cannot be placed: counted, dropped
            tracker.malformed()
            return []
        clock = self._framer.record_clock
        # with no reading of its clock yet, the device's time is taken for UTC
        time_s = clock.to_utc(device_s) if clock.ready else device_s + self._now() - self._utc()
        transfer = self.transfer
        if transfer is not None and transfer.stream == stream:
            transfer.record(number, time_s)
            if transfer.probing:  # only its number was wanted: it comes again, in order
                return []
            if number is None and transfer.cursor is not None and device_s <= transfer.cursor:
                return []  # by time: the outbox holds it already
        if number is None:  # by time: the cursor is the newest device timestamp held
            number = int(device_s)
        self._access.statistics.records += 1
        self._cursors[stream] = number
        frames: list[Frame] = []
        last_s = tracker.last_end_s
        if last_s is None or time_s > last_s:  # older ones came live (the outbox drops them)
            gap = tracker.data(time_s, time_s, 1, backfilled=True)
            if gap is not None:
                self._open_gaps.setdefault(stream, []).append(gap)
                frames.append(gap)
        frames.append(
            VitalReading(
                self._framer.device_id,
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

    async def read_clock(self, client: BleakClient) -> None:
        """The device's clock now (Current Time), to place the records it keeps."""
        current_time = find(client.services, uuids.CURRENT_TIME)
        if current_time is None:
            return
        try:
            raw = await client.read_gatt_char(current_time)
            received_s = self._now()
            device_s = decode_current_time(raw).epoch_s()
        except (BleakError, DecodeError) as exc:  # the records go by our clock, then
            self._log.warning("%s: unreadable Current Time: %s", self._framer.device_id, exc)
            return
        if device_s is not None:
            self._framer.record_clock.observe(device_s, received_s)
