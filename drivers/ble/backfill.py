"""Backfill over the Record Access Control Point: after each connect, what the device recorded.

One procedure per connection, for the device's recorded stream. By sequence number where the
profile numbers its records (blood pressure): ask how many records follow the last one the
outbox holds (the cursor), then for those. By time where it does not (pulse oximeter
spot-checks, whose control point knows only "all records"): ask for all of them, and keep
those newer than the cursor (the newest device timestamp held). The records arrive as
notifications of the record characteristic and are decoded by the link's decode loop like any
notification; the answers to the control point come here. Live readings of the same stream
wait until the procedure ends, so that the stream is stored in time order (where records come
on the live characteristic itself, everything on it meanwhile is taken as a record).

What the device's answers mean here: no records (nothing new), not supported (the device
cannot; not asked again while the link lives), procedure already in progress (an abort, then
the request once more), anything else or silence (given up until the next connect). A link
lost mid-transfer ends the procedure; every record that arrived whole was stored, and the next
connect resumes after the last one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Literal

from bleak.exc import BleakError

from drivers.errors import DecodeError
from drivers.gatt import racp, uuids
from drivers.gatt.bp_record import decode_blood_pressure_record
from drivers.gatt.plx import decode_plx_spot_check

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from bleak import BleakClient
    from bleak.backends.characteristic import BleakGATTCharacteristic

log = logging.getLogger(__name__)

Order = Literal["sequence", "time"]


@dataclass(frozen=True, slots=True)
class Recorded:
    """A stream a device keeps records of, and how they are asked for."""

    stream: str
    record_uuid: str  # where the records come
    live_uuid: str  # where live readings come
    by: Order


# record characteristic -> what it holds
RECORDED: Final = {
    r.record_uuid: r
    for r in (
        Recorded(
            "blood_pressure",
            uuids.BLOOD_PRESSURE_RECORD,
            uuids.BLOOD_PRESSURE_MEASUREMENT,
            "sequence",
        ),
        Recorded("spo2_spot", uuids.PLX_SPOT_CHECK, uuids.PLX_SPOT_CHECK, "time"),
    )
}


def decode_record(uuid: str, data: bytes | bytearray) -> tuple[int | None, dict[str, object]]:
    """One record: its sequence number (where the profile has one) and its fields.

    Raises:
        DecodeError: The record is malformed.
    """
    if uuid == uuids.BLOOD_PRESSURE_RECORD:
        record = decode_blood_pressure_record(data)
        return record.sequence_number, record.measurement.to_json()
    return None, decode_plx_spot_check(data).to_json()


_SEQUENCE_MODULO: Final = 0x10000
_NOT_SUPPORTED: Final = frozenset(
    {
        racp.ResponseCode.OP_CODE_NOT_SUPPORTED,
        racp.ResponseCode.OPERATOR_NOT_SUPPORTED,
        racp.ResponseCode.OPERAND_NOT_SUPPORTED,
        racp.ResponseCode.INVALID_OPERATOR,
    }
)

Outcome = Literal["complete", "unsupported", "failed", "interrupted"]


@dataclass(slots=True)
class Transfer:
    """One connection's procedure for one recorded stream, as the decode loop sees it."""

    recorded: Recorded
    control: BleakGATTCharacteristic  # the record access control point of its service
    first_wanted: int | None = None  # the sequence number asked from (None: not asked yet)
    cursor: int | None = None  # the last one the outbox held when asked (a number, or time)
    first_seq: int | None = None  # the first record that came
    first_time_s: float | None = None
    records: int = 0
    last_progress_s: float = field(default_factory=time.monotonic)
    outcome: Outcome | None = None
    restarted: bool = False  # the device numbers from 0 again: what it had before is gone
    probing: bool = False  # asking for the newest record only to learn its number
    damaged: int = 0  # records that arrived malformed (counted, dropped)
    ended: bool = False  # the procedure is over; the decode loop has yet to wind it up
    finished: asyncio.Event = field(default_factory=asyncio.Event)  # ... and now it has

    @property
    def stream(self) -> str:
        """The recorded stream."""
        return self.recorded.stream

    def record(self, sequence_number: int | None, time_s: float) -> None:
        """A record arrived whole."""
        if self.records == 0:
            self.first_seq, self.first_time_s = sequence_number, time_s
        self.records += 1
        self.last_progress_s = time.monotonic()

    def covered_from_s(self) -> float | None:
        """From when on the device's memory is known complete in the outbox, after success.

        ``-inf`` when the records continue the cursor's (or there were none since it): every
        reading the device took is held. Otherwise the first record's time: the device forgot
        what came before it (its memory is a ring), so only gaps after it are filled. By time:
        the oldest record's time (nothing at all proves nothing). A malformed record: ``inf``,
        the gaps stay open.
        """
        if self.damaged:
            return float("inf")
        if self.recorded.by == "time":
            return self.first_time_s if self.first_time_s is not None else float("inf")
        if self.restarted:
            return self.first_time_s if self.first_seq is not None else float("inf")
        if self.first_seq is None or self.first_seq == self.first_wanted or self.cursor is None:
            return -float("inf")
        return self.first_time_s


@dataclass(slots=True)
class BackfillStatistics:
    """One device's backfill since start."""

    transfers: int = 0  # procedures that completed
    records: int = 0  # records received whole
    failures: int = 0
    interrupted: int = 0  # cut by the link (the next connect resumes)
    aborts: int = 0  # procedures of another collector the device was told to abort
    last_outcome: str | None = None
    supported: bool | None = None  # None: not known yet


class RecordAccess:
    """The collector's side of the control point for one device link."""

    def __init__(
        self,
        device_id: str,
        cursor: Callable[[str], Awaitable[int | None]],
        *,
        answer_timeout_s: float,
    ) -> None:
        self.device_id = device_id
        self.statistics = BackfillStatistics()
        self._cursor = cursor
        self._timeout_s = answer_timeout_s
        self._answers: asyncio.Queue[racp.Answer] = asyncio.Queue()
        self._control: BleakGATTCharacteristic | None = None  # the running transfer's
        self._log = logging.LoggerAdapter(log, {"device_id": device_id})

    def answered(self, data: bytes | bytearray) -> None:
        """An indication of the control point (from the decode loop, in notification order).

        Raises:
            DecodeError: Not an answer.
        """
        self._answers.put_nowait(racp.decode_answer(data))

    async def run(self, client: BleakClient, transfer: Transfer) -> Outcome:
        """The procedure for ``transfer``'s stream; how it ended.

        The caller subscribed to the record and control point characteristics, and routes
        their notifications to the decode loop (records) and :meth:`answered` (answers).
        """
        self._control = transfer.control
        while not self._answers.empty():  # an answer a lost link left behind
            self._answers.get_nowait()
        if self.statistics.supported is False:
            return "unsupported"
        cursor = await self._cursor(transfer.stream)
        first = 0 if cursor is None else (cursor + 1) % _SEQUENCE_MODULO
        transfer.cursor, transfer.first_wanted = cursor, first
        try:
            if transfer.recorded.by == "time":
                outcome = await self._all_records(client, transfer)
            else:
                outcome = await self._procedure(client, transfer, first)
        except asyncio.CancelledError:
            self.statistics.interrupted += 1
            self.statistics.last_outcome = "interrupted"
            raise
        except (BleakError, TimeoutError, DecodeError) as exc:
            self._log.warning("%s: backfill failed: %s", self.device_id, exc or type(exc).__name__)
            outcome = "failed"
        self.statistics.last_outcome = outcome
        if outcome == "complete":
            self.statistics.transfers += 1
            self.statistics.supported = True
        elif outcome == "unsupported":
            self.statistics.supported = False
            self._log.warning("%s: the device does not give its records back", self.device_id)
        else:
            self.statistics.failures += 1
        return outcome

    async def _procedure(self, client: BleakClient, transfer: Transfer, first: int) -> Outcome:
        answer = await self._request(client, racp.count_from(first))
        if answer.op_code is not racp.OpCode.NUMBER_RESPONSE:
            return self._ended(answer)
        if not answer.count:
            if transfer.cursor is None or not await self._numbering_restarted(client, transfer):
                return "complete"
            first = transfer.first_wanted = 0
        self._log.info(
            "%s: fetching %s %s records from #%d",
            self.device_id,
            answer.count or "all",
            transfer.stream,
            first,
        )
        answer = await self._request(client, racp.records_from(first), transfer)
        return self._ended(answer)

    async def _all_records(self, client: BleakClient, transfer: Transfer) -> Outcome:
        """Every record the device holds (the link keeps those newer than the cursor)."""
        answer = await self._request(
            client, racp.Request(racp.OpCode.REPORT_NUMBER, racp.Operator.ALL)
        )
        if answer.op_code is not racp.OpCode.NUMBER_RESPONSE:
            return self._ended(answer)
        if not answer.count:
            return "complete"
        self._log.info(
            "%s: the device holds %d %s records; fetching them all",
            self.device_id,
            answer.count,
            transfer.stream,
        )
        answer = await self._request(
            client, racp.Request(racp.OpCode.REPORT_RECORDS, racp.Operator.ALL), transfer
        )
        return self._ended(answer)

    async def _numbering_restarted(self, client: BleakClient, transfer: Transfer) -> bool:
        """Nothing follows the cursor: is that because the device numbers from 0 again?

        A device whose memory was cleared (a battery change, a reset) numbers its records from
        0 again, so "after the cursor" finds nothing however much it recorded. Its newest
        record tells: the cursor's own number, or another one (then everything is fetched).
        """
        transfer.probing = True
        try:
            answer = await self._request(
                client, racp.Request(racp.OpCode.REPORT_RECORDS, racp.Operator.LAST), transfer
            )
        finally:
            transfer.probing = False
        newest = transfer.first_seq
        transfer.first_seq = transfer.first_time_s = None
        transfer.records = 0
        if self._ended(answer) != "complete" or newest is None or newest == transfer.cursor:
            return False
        self._log.warning(
            "%s: the device numbers its records from 0 again (newest #%d, ours #%s)",
            self.device_id,
            newest,
            transfer.cursor,
        )
        transfer.restarted = True
        return True

    def _ended(self, answer: racp.Answer) -> Outcome:
        if answer.op_code is not racp.OpCode.RESPONSE_CODE:
            return "failed"
        if answer.code in (racp.ResponseCode.SUCCESS, racp.ResponseCode.NO_RECORDS_FOUND):
            return "complete"
        if answer.code in _NOT_SUPPORTED:
            return "unsupported"
        self._log.warning(
            "%s: the device ended the record transfer: %s",
            self.device_id,
            answer.code.name if answer.code else "?",
        )
        return "failed"

    async def _request(
        self, client: BleakClient, request: racp.Request, transfer: Transfer | None = None
    ) -> racp.Answer:
        """Write ``request`` and wait for its answer (while records come, as long as they do).

        A device busy with an earlier procedure is told to abort it, then asked again once.
        """
        try:
            await self._write(client, request)
        except BleakError as exc:
            if f"0x{racp.ATT_PROCEDURE_ALREADY_IN_PROGRESS:02x}" not in str(exc).lower():
                raise
            self._log.info("%s: a record procedure was running; aborting it", self.device_id)
            self.statistics.aborts += 1
            await self._write(client, racp.ABORT)
            await self._answer(None)
            await self._write(client, request)
        return await self._answer(transfer)

    async def _write(self, client: BleakClient, request: racp.Request) -> None:
        async with asyncio.timeout(self._timeout_s):
            assert self._control is not None  # run() set it
            await client.write_gatt_char(self._control, request.encode())

    async def _answer(self, transfer: Transfer | None) -> racp.Answer:
        """The next answer; silence for the timeout (records count as news) is a failure."""
        while True:
            try:
                async with asyncio.timeout(self._timeout_s):
                    return await self._answers.get()
            except TimeoutError:
                quiet_s = time.monotonic() - transfer.last_progress_s if transfer else None
                if quiet_s is None or quiet_s >= self._timeout_s:
                    raise
