"""Health upload sink: vitals rows -> AI-33 health records -> ``POST /health/upload``."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from gateway import health_records
from gateway.codec import HEALTH_STREAMS
from gateway.errors import SinkError
from gateway.retry import Backoff, DeadLetter, classify

if TYPE_CHECKING:
    from buffers.outbox import Outbox
    from buffers.records import OutboxRecord
    from gateway.clients.tcm import TcmClient
    from gateway.config import SyncConfig

log = logging.getLogger(__name__)

SINK: Final = "health_upload"


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


class HealthUploadSink:
    """Uploads every committed vitals row as a realtime health record, packed per device."""

    def __init__(self, outbox: Outbox, client: TcmClient, config: SyncConfig) -> None:
        self._outbox = outbox
        self._client = client
        self._config = config
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
        )

    async def run(self) -> None:
        """Deliver the backlog, then each new commit, until cancelled.

        One request at a time, for the device with the oldest waiting row, carrying up to
        ``batch_max_records`` of that device's rows in order; requests are paced so that the
        plan's tightest quota lasts (on the free plan the month allows one every 259 s, so a
        request carries what accumulated meanwhile).
        """
        cap = self._config.batch_max_records
        while True:
            rows = await self._outbox.lease(SINK, 4 * cap)
            if not rows:
                await self._outbox.wait_committed(timeout_s=1.0)
                continue
            device_id = rows[0].record.device_id
            mine = [r for r in rows if r.record.device_id == device_id][:cap]
            ready = health_records.build(
                mine,
                interval_s=self._config.record_interval_s,
                now_s=time.time(),
                grace_s=self._config.record_grace_s,
                uploaded_until_s=self._uploaded_until.get(device_id, -math.inf),
                truncated=len(mine) == cap,
            )
            chosen = set(ready.row_ids)
            await self._outbox.release(SINK, [r.id for r in rows if r.id not in chosen])
            if not ready.records:  # only intervals still open: wait for the oldest to close
                await asyncio.sleep(min(max(ready.wait_s, 0.05), 5.0))
                continue
            delay_s = await self._send(device_id, ready.records, ready.row_ids)
            if delay_s == 0.0:
                self._uploaded_until[device_id] = ready.closed_until_s
            pace_s = max(self._config.min_request_interval_s, self._client.sustainable_interval_s())
            await asyncio.sleep(max(delay_s, pace_s))

    async def _send(
        self, device_id: str, records: list[dict[str, object]], ids: list[int]
    ) -> float:
        """One request; ack, nack or dead-letter its rows; return how long to wait."""
        self._requests += 1
        try:
            result = await self._client.upload_health(
                device_id,
                records,
                data_type="realtime",
                sync_type="incremental",
            )
        except SinkError as exc:
            self._last_error = f"{exc} (request {exc.request_id})"
            self._attempt += 1
            decision = classify(exc, self._attempt, self._backoff)
            if isinstance(decision, DeadLetter):
                log.error("health upload refused %d records: %s", len(ids), self._last_error)
                self._dead += len(ids)
                await self._outbox.dead_letter(SINK, ids, decision.reason)
                return 0.0
            log.warning(
                "health upload failed, retry in %.1f s: %s", decision.after_s, self._last_error
            )
            self._retries += 1
            await self._outbox.nack(SINK, ids, time.time() + decision.after_s, str(exc))
            return decision.after_s
        self._attempt = 0
        self._uploaded += result.accepted
        self._duplicates += result.duplicates
        self._by_device[device_id] += len(ids)
        await self._outbox.ack(SINK, ids)
        return 0.0
