"""Health upload sink: vitals rows -> AI-33 health records -> ``POST /health/upload``.

``sync.mode: realtime`` uploads each closed interval as soon as it is durable
(``data_type=realtime``); ``batch`` uploads everything closed every ``sync.batch_interval_s``
(``data_type=batch``, ``sync_type=incremental``). :meth:`HealthUploadSink.request_sync` (``wgw
sync``) runs a batch now, or with ``full`` resends the retained history (``sync_type=full``)
without touching the backlog. Every request is filled up to the record and byte caps, so a
backlog drains in the fewest requests the plan's quota allows.

Size: the sink's live and backfill lanes, pacing and full resend share one backlog and one
quota; split apart, each part would reach into the others' state. The record format is
``gateway.clients.tcm_records``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import json
import logging
import math
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

from drivers.backoff import Backoff
from gateway import codec
from gateway.clients import tcm_records as health_records
from gateway.codec import HEALTH_STREAMS
from gateway.errors import SinkError
from gateway.retry import DeadLetter, classify
from gateway.upload_when import UploadConditions

if TYPE_CHECKING:
    from buffers.outbox import Outbox
    from buffers.records import OutboxRecord, StoredRecord
    from gateway.clients.tcm import TcmClient
    from gateway.config import SyncConfig

log = logging.getLogger(__name__)

SINK: Final = "health_upload"
_IDLE_POLL_S: Final = 1.0
_PROBE_ROWS: Final = 64  # the oldest waiting rows: whose device the next request is for


class _Idle(enum.Enum):
    """A lane with no rows of its own."""

    IDLE = enum.auto()


_IDLE: Final = _Idle.IDLE
# What one attempt on a lane gives: the wait before the next request, None when only open
# intervals wait, or _IDLE.
_Outcome = float | None | _Idle

DataType = Literal["realtime", "batch"]
SyncType = Literal["incremental", "full"]


def wants(record: OutboxRecord) -> bool:
    """Vitals that map onto a field of the health record."""
    return record.kind == "vital" and record.stream in HEALTH_STREAMS


@dataclass(frozen=True, slots=True)
class HealthUploadStatistics:
    """What the sink has done since start."""

    requests: int
    records_uploaded: int
    uploaded_by_device: dict[str, int]
    duplicates_reported: int
    retries: int
    dead_lettered: int
    last_error: str | None
    sync: SyncProgress | None  # the latest requested sync
    backfilling: bool  # a backlog drains on its own lane beside live data
    backfills: int  # how often that started
    # the plan's tightest quota window as the client counts it: (limit, remaining, reset epoch s)
    quota: tuple[int, int, float] | None
    waiting_for: str | None = None  # why uploads wait now (sync.upload_when), if they do


@dataclass(slots=True)
class SyncProgress:
    """One requested sync (``wgw sync``), as its progress bar shows it."""

    kind: SyncType
    state: Literal["queued", "running", "done"]
    total_rows: int  # readings to go through when it started
    done_rows: int = 0
    requests: int = 0
    records: int = 0
    started_s: float = 0.0
    finished_s: float | None = None
    last_error: str | None = None


class HealthUploadSink:
    """Uploads committed vitals rows as health records, packed per device, one request at a time."""

    def __init__(
        self,
        outbox: Outbox,
        client: TcmClient,
        config: SyncConfig,
        conditions: UploadConditions | None = None,
    ) -> None:
        self._outbox = outbox
        self._client = client
        self._config = config
        self._conditions = conditions or UploadConditions(config.upload_when)
        self._waiting_for: str | None = None
        self._backoff = Backoff(config.retry_min_s, config.retry_max_s)
        self._attempt = 0
        self._uploaded_until: dict[str, float] = {}
        self._requests = 0
        self._uploaded = 0
        self._by_device: Counter[str] = Counter()
        self._duplicates = 0
        self._retries = 0
        self._dead = 0
        self._last_error: str | None = None
        self._requested: SyncProgress | None = None
        self._sync: SyncProgress | None = None
        self._wake = asyncio.Event()
        self._last_request_s = -math.inf
        self._batch_due = time.monotonic() + config.batch_interval_s
        self._backfill: _Lane | None = None  # while a backlog drains beside live data
        self._live = _Lane("live", "realtime", 0, self._uploaded_until)
        self._backfills = 0
        self._open_wait_s = 0.0

    def statistics(self) -> HealthUploadStatistics:
        """Counters since start."""
        return HealthUploadStatistics(
            self._requests,
            self._uploaded,
            dict(self._by_device),
            self._duplicates,
            self._retries,
            self._dead,
            self._last_error,
            self._sync,
            self._backfill is not None,
            self._backfills,
            self._client.quota(),
            self._waiting_for,
        )

    def drain_eta_s(self, pending_rows: int, devices: int) -> float:
        """Estimated seconds until ``pending_rows`` waiting readings are uploaded.

        Requests carry one device each and at most ``batch_max_records`` readings, one every
        pace interval (the quota's, or ``min_request_interval_s``); in batch mode the next
        batch must come first. The open interval's wait is not counted.
        """
        if pending_rows <= 0:
            return 0.0
        cap = self._config.batch_max_records
        requests = max(math.ceil(pending_rows / cap), min(devices, pending_rows), 1)
        pace_s = max(self._config.min_request_interval_s, self._client.sustainable_interval_s())
        wait_s = 0.0
        if self._config.mode == "batch":
            wait_s = max(self._batch_due - time.monotonic(), 0.0)
        return wait_s + (requests - 1) * pace_s

    async def request_sync(self, *, full: bool = False) -> SyncProgress:
        """Queue a sync now: a batch of everything closed, or (``full``) the retained history.

        A request while one is queued or running returns that one.
        """
        if self._sync is not None and self._sync.state != "done":
            return self._sync
        if full:
            total = await self._outbox.count_retained("vital", HEALTH_STREAMS)
        else:
            total = (await self._outbox.statistics()).backlog[SINK].pending
        self._sync = self._requested = SyncProgress(
            "full" if full else "incremental", "queued", total, started_s=time.time()
        )
        self._wake.set()
        return self._sync

    async def run(self) -> None:
        """Deliver until cancelled: realtime as rows commit, or batches on the interval."""
        self._batch_due = time.monotonic() + self._config.batch_interval_s
        while True:
            job, self._requested = self._requested, None
            if job is not None:
                job.state = "running"
                if job.kind == "full":
                    await self._resend_history(job)
                else:
                    await self._drain("batch", job)
                job.state, job.finished_s = "done", time.time()
            elif self._config.mode == "batch":
                if time.monotonic() >= self._batch_due:
                    await self._drain("batch", None)
                    self._batch_due = time.monotonic() + self._config.batch_interval_s
                else:
                    await self._sleep(self._batch_due - time.monotonic())
            else:
                await self._deliver_realtime()

    async def _sleep(self, seconds: float) -> None:
        """Wait ``seconds``, or less if a sync is requested."""
        self._wake.clear()
        if self._requested is not None:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(seconds, 0.0)):
                await self._wake.wait()

    async def _drain(self, data_type: DataType, job: SyncProgress | None) -> None:
        """Upload closed intervals until none is left (a batch, or a requested sync).

        While a backfill runs beside live data, its lane drains first, then the live one,
        each with its own record of what it uploaded.
        """
        lanes = [_Lane("batch", data_type, 0, self._uploaded_until)]
        if self._backfill is not None:
            lanes = [
                dataclasses.replace(lane, data_type="batch")
                for lane in (self._backfill, self._live)
            ]
        for lane in lanes:
            while True:
                outcome = await self._try_lane(lane, job)
                if isinstance(outcome, _Idle) or outcome is None:
                    break
                if outcome > 0:
                    await self._sleep(outcome)
        if self._backfill is not None and not await self._outbox.has_pending_before(
            SINK, self._backfill.before_s
        ):
            self._backfill = None

    async def _deliver_realtime(self) -> None:
        """Realtime delivery until a sync is requested.

        Live first: when the oldest waiting reading is older than ``backfill_after_s`` (an
        outage ended), new intervals go on a live lane (``data_type=realtime``) while a backfill
        lane drains the backlog oldest first (``data_type=batch``); ``backfill_share`` of the
        requests go to the backfill while both have work. Lanes split by time at an interval
        boundary, so no interval is ever uploaded from both.
        """
        single = _Lane("realtime", "realtime", 0, self._uploaded_until)
        while self._requested is None:
            if self._backfill is None:
                outcome = await self._try_lane(single, None, may_split=True)
            else:
                outcome = await self._both_lanes(self._backfill, self._live)
            if isinstance(outcome, _Idle):
                await self._outbox.wait_committed(timeout_s=_IDLE_POLL_S)
            elif outcome is None:  # only intervals still open: until the oldest closes
                await self._sleep(min(max(self._open_wait_s, 0.05), 5.0))
            elif outcome > 0:
                await self._sleep(outcome)

    async def _both_lanes(self, backfill: _Lane, live: _Lane) -> _Outcome:
        """One request on the lane whose turn it is (or on the other, if it has none)."""
        total = backfill.requests + live.requests
        backfill_turn = backfill.requests <= self._config.backfill_share * total
        outcomes: list[_Outcome] = []
        for lane in (backfill, live) if backfill_turn else (live, backfill):
            outcome = await self._try_lane(lane, None)
            if (
                outcome is _IDLE
                and lane is backfill
                and not await self._outbox.has_pending_before(SINK, backfill.before_s)
            ):
                log.info("backfill done: %d requests; one lane again", backfill.requests)
                self._backfill = None
                return 0.0
            if isinstance(outcome, float):
                return outcome
            outcomes.append(outcome)
        return None if None in outcomes else _IDLE

    async def _try_lane(
        self, lane: _Lane, job: SyncProgress | None, *, may_split: bool = False
    ) -> _Outcome:
        """One request for the lane's device with the oldest row.

        Returns how long to wait before the next request (pacing, or a retry's delay), None
        when that device has no closed interval yet, or ``_IDLE`` when the lane has no rows.
        """
        rows = await self._outbox.peek(SINK, _PROBE_ROWS, after_id=lane.after_id)
        # A backlog: rows more than backfill_after_s (and the quota's pace) older than what
        # would be live data now. It counts only once requests succeed again: during an
        # outage everything waits alike.
        split_s = self._split_time()
        lag_s = self._config.backfill_after_s + self._client.sustainable_interval_s()
        old_backlog = bool(rows) and rows[0].record.t0_s < split_s - lag_s
        if may_split and self._attempt == 0 and old_backlog:
            await self._split(split_s)
            return 0.0
        own = [r for r in rows if lane.takes(r.record.t0_s)]
        if not own:
            return _IDLE
        # the request is that device's: as many of its readings as a request takes
        device_id = own[0].record.device_id
        rows = await self._outbox.lease(
            SINK, self._config.batch_max_records, after_id=lane.after_id, device_id=device_id
        )
        mine = [r for r in rows if lane.takes(r.record.t0_s)]
        # Readings fetched from the device's memory (backfill) go apart, when the oldest row
        # is one: as batch records, each with its own time (they are history, and the
        # intervals they fall in may be gone).
        history = bool(mine) and mine[0].record.backfilled
        mine = [r for r in mine if r.record.backfilled == history]
        # a thread: a full request's readings take ~90 ms to decode and aggregate, and the
        # event loop owes live readings their few milliseconds meanwhile
        ready = await asyncio.to_thread(
            self._fit,
            mine,
            -math.inf if history else lane.uploaded_until.get(device_id, -math.inf),
            0.0 if history else self._config.record_interval_s,
        )
        chosen = set(ready.row_ids)
        await self._outbox.release(SINK, [r.id for r in rows if r.id not in chosen])
        if not ready.records:
            self._open_wait_s = ready.wait_s
            return None
        await self._pace(sustained=job is None)
        delay_s = await self._send(
            device_id,
            ready.records,
            ready.row_ids,
            "batch" if history else lane.data_type,
            "incremental",
        )
        if delay_s == 0.0 and not history:
            lane.uploaded_until[device_id] = ready.closed_until_s
        if delay_s == 0.0:
            lane.requests += 1
            if job is not None:
                job.done_rows += len(ready.row_ids)
                job.requests += 1
                job.records += len(ready.records)
        elif job is not None:
            job.last_error = self._last_error
        return delay_s

    def _split_time(self) -> float:
        """Where live data starts now: the interval before the open one (its grace included)."""
        interval_s = self._config.record_interval_s
        recent_s = time.time() - self._config.record_grace_s - max(interval_s, 1.0)
        return math.floor(recent_s / interval_s) * interval_s if interval_s > 0 else recent_s

    async def _split(self, split_s: float) -> None:
        """An old backlog: a backfill lane before ``split_s``, a live lane from it."""
        first_live = await self._outbox.first_pending_since(SINK, split_s)
        live_after = first_live - 1 if first_live is not None else self._outbox.last_id
        self._backfill = _Lane("backfill", "batch", 0, {}, before_s=split_s)
        self._live = _Lane("live", "realtime", live_after, self._uploaded_until, from_s=split_s)
        self._backfills += 1
        log.warning(
            "health upload: a backlog from %s; live data first, the backlog on a backfill lane",
            codec.iso_utc(split_s),
        )

    def _fit(
        self, rows: list[StoredRecord], uploaded_until_s: float, interval_s: float
    ) -> health_records.Ready:
        """The closed intervals of ``rows``, cut (oldest kept) until the body fits the byte cap.

        ``interval_s`` 0: a record per reading, each with its own time.
        """
        truncated = len(rows) == self._config.batch_max_records
        while True:
            ready = health_records.build(
                rows,
                interval_s=interval_s,
                now_s=time.time(),
                grace_s=self._config.record_grace_s,
                uploaded_until_s=uploaded_until_s,
                truncated=truncated,
            )
            if len(rows) <= 1 or _body_bytes(ready.records) <= self._config.batch_max_bytes:
                return ready
            rows, truncated = rows[: len(rows) // 2], True

    async def _pace(self, *, sustained: bool) -> None:
        """Space requests: ``min_request_interval_s``, and when ``sustained`` the quota's pace.

        The client's limiter never exceeds a quota window; pacing spreads the budget over the
        month instead of spending it at once. A sync a person asked for is not paced that way:
        it is one burst, and they are waiting for it.
        """
        await self._until_allowed()
        pace_s = self._config.min_request_interval_s
        if sustained:
            pace_s = max(pace_s, self._client.sustainable_interval_s())
        wait_s = self._last_request_s + pace_s - time.monotonic()
        if wait_s > 0:
            await asyncio.sleep(wait_s)
        self._last_request_s = time.monotonic()

    async def _until_allowed(self) -> None:
        """Wait while ``sync.upload_when`` forbids uploads (no charger, battery low, no Wi-Fi)."""
        while (reason := await self._conditions.blocked()) is not None:
            if reason != self._waiting_for:
                log.info("health upload waits: %s", reason)
            self._waiting_for = reason
            await asyncio.sleep(self._config.upload_when.check_interval_s)
        if self._waiting_for is not None:
            log.info("health upload resumes (was: %s)", self._waiting_for)
        self._waiting_for = None

    async def _resend_history(self, job: SyncProgress) -> None:
        """Every retained reading again, per device and in order, as ``sync_type=full``.

        Rows are read in chunks; each device's newest interval in a chunk waits for the next
        chunk (it may continue there), and the interval still open now is left to the
        incremental path. Delivery state and cursors are untouched.
        """
        interval_s = self._config.record_interval_s
        carry: dict[str, list[StoredRecord]] = defaultdict(list)
        after_id = 0
        while True:
            chunk = await self._outbox.history(wants, after_id, 4 * self._config.batch_max_records)
            if chunk:
                after_id = chunk[-1].id
            for row in chunk:
                carry[row.record.device_id].append(row)
            for device_id, rows in carry.items():
                groups = _intervals(rows, interval_s)
                keep = groups.pop() if chunk and interval_s > 0 and groups else []
                carry[device_id] = keep
                await self._resend(device_id, [r for g in groups for r in g], job)
            if not chunk:
                return

    async def _resend(self, device_id: str, rows: list[StoredRecord], job: SyncProgress) -> None:
        """Whole intervals, packed up to the caps, as ``sync_type=full`` requests."""
        part: list[StoredRecord] = []
        for interval in _intervals(rows, self._config.record_interval_s):
            if part and len(part) + len(interval) > self._config.batch_max_records:
                await self._resend_part(device_id, part, job)
                part = []
            part.extend(interval)
        if part:
            await self._resend_part(device_id, part, job)

    async def _resend_part(
        self, device_id: str, rows: list[StoredRecord], job: SyncProgress
    ) -> None:
        ready = health_records.build(
            rows,
            interval_s=self._config.record_interval_s,
            now_s=time.time(),
            grace_s=self._config.record_grace_s,
            uploaded_until_s=-math.inf,
        )
        if _body_bytes(ready.records) > self._config.batch_max_bytes and len(ready.records) > 1:
            halves = _intervals(rows, self._config.record_interval_s)
            middle = len(halves) // 2
            for half in (halves[:middle], halves[middle:]):
                await self._resend_part(device_id, [r for i in half for r in i], job)
            return
        while ready.records:
            await self._pace(sustained=False)
            delay_s = await self._send(device_id, ready.records, [], "batch", "full")
            if delay_s == 0.0:
                job.requests += 1
                job.records += len(ready.records)
                break
            job.last_error = self._last_error
            await asyncio.sleep(delay_s)
        job.done_rows += len(rows)

    async def _send(
        self,
        device_id: str,
        records: list[dict[str, object]],
        ids: list[int],
        data_type: DataType,
        sync_type: SyncType,
    ) -> float:
        """One request; ack, nack or dead-letter its rows; return how long to wait."""
        self._requests += 1
        try:
            result = await self._client.upload_health(
                device_id, records, data_type=data_type, sync_type=sync_type
            )
        except SinkError as exc:
            self._last_error = f"{exc} (request {exc.request_id})"
            self._attempt += 1
            decision = classify(exc, self._attempt, self._backoff)
            if isinstance(decision, DeadLetter):
                log.error(
                    "health upload refused %d records: %s",
                    len(records),
                    self._last_error,
                    extra={"device_id": device_id, "request_id": exc.request_id},
                )
                if ids:
                    await self._outbox.dead_letter(SINK, ids, decision.reason)
                self._dead += len(ids)  # once they are parked: a count says what the file holds
                return 0.0
            log.warning(
                "health upload failed, retry in %.1f s: %s",
                decision.after_s,
                self._last_error,
                extra={"device_id": device_id, "request_id": exc.request_id},
            )
            self._retries += 1
            if ids:
                await self._outbox.nack(SINK, ids, time.time() + decision.after_s, str(exc))
            return decision.after_s
        self._attempt = 0
        self._uploaded += result.accepted
        self._duplicates += result.duplicates
        if ids:
            self._by_device[device_id] += len(ids)
            await self._outbox.ack(SINK, ids)
        return 0.0


@dataclass(slots=True)
class _Lane:
    """One ordered stream of requests over the sink's backlog.

    ``after_id``: the lane leases rows after it; ``before_s``/``from_s``: the rows it takes by
    time (the others are left to the other lane).
    """

    name: str
    data_type: DataType
    after_id: int
    uploaded_until: dict[str, float]
    before_s: float = math.inf
    from_s: float = -math.inf
    requests: int = 0

    def takes(self, t0_s: float) -> bool:
        return self.from_s <= t0_s < self.before_s


def _body_bytes(records: list[dict[str, object]]) -> int:
    return len(json.dumps(records, separators=(",", ":")))


def _intervals(rows: list[StoredRecord], interval_s: float) -> list[list[StoredRecord]]:
    """``rows`` (one device, oldest first) grouped by the interval they fall in."""
    groups: list[list[StoredRecord]] = []
    current: float | None = None
    for row in rows:
        start = math.floor(row.record.t0_s / interval_s) if interval_s > 0 else row.id
        if start != current:
            groups.append([])
            current = start
        groups[-1].append(row)
    return groups
