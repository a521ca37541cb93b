"""Conversion sink: PPG and ECG waveform rows -> the HeartVoice API -> converted ECG rows.

Per device and stream, committed rows run through the gateway's signal chain (band-pass,
resample to the API rate, windows of ``dsp.window_s``). A window that passes the quality gate
and is due (at most one per device and stream every ``conversion.interval_s``) is converted:
PPG -> one ECG lead (``ppgFlowEcg``), on to 12 leads (``mcma``) when ``conversion.twelve_lead``;
one-lead ECG -> ``mcma``; three-lead ECG -> ``lead3Lead12``. Results go back into the outbox as
waveform rows (``ecg_from_ppg``, ``ecg12``), from where MQTT publishes them and ``wgw plot``
draws them. Requests are paced by the sink's own budget (``max_requests_per_min``), so it never
crowds out the health uploads; low-quality windows are not sent, and counted.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, TypeVar

import numpy as np

from drivers.backoff import Backoff
from gateway import codec
from gateway.errors import SinkError
from gateway.pipeline import quality
from gateway.pipeline.chain import ChainSettings, SignalChain
from gateway.retry import DeadLetter, classify

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from numpy.typing import NDArray

    from buffers.outbox import Outbox
    from buffers.records import OutboxRecord, StoredRecord
    from gateway.clients.heartvoice import HeartVoiceClient
    from gateway.config import ConversionConfig, DspConfig
    from gateway.pipeline.chain import Window
    from gateway.pipeline.quality import Kind

log = logging.getLogger(__name__)

SINK: Final = "conversion"
INPUT_STREAMS: Final = frozenset({"ppg", "ecg"})
_LEASE_ROWS: Final = 64
T = TypeVar("T")


def wants(record: OutboxRecord) -> bool:
    """Raw PPG and ECG chunks."""
    return record.kind == "waveform" and record.stream in INPUT_STREAMS


@dataclass(frozen=True, slots=True)
class ConversionStatistics:
    """What the sink has done since start."""

    windows: int  # completed by the chains
    converted: int  # windows whose result is stored
    below_gate: int  # not sent: the quality gate said no
    not_due: int  # not sent: the stream had a conversion less than interval_s before
    failed: int  # refused by the API for good (the raw data stays stored)
    bad_rows: int  # rows no chain could take (skipped, logged)
    retries: int
    requests: int
    last_error: str | None


class ConversionSink:
    """Runs one signal chain per device and stream over the committed rows, converts windows."""

    def __init__(
        self,
        outbox: Outbox,
        client: HeartVoiceClient,
        config: ConversionConfig,
        dsp: DspConfig,
    ) -> None:
        self._outbox = outbox
        self._client = client
        self._config = config
        self._dsp = dsp
        self._backoff = Backoff(config.retry_min_s, config.retry_max_s)
        self._chains: dict[tuple[str, str], SignalChain] = {}
        self._last_t0: dict[tuple[str, str], float] = {}
        self._next_request_s = 0.0
        self._windows = self._converted = self._below_gate = self._not_due = 0
        self._failed = self._retries = self._requests = self._bad_rows = 0
        self._last_error: str | None = None

    def statistics(self) -> ConversionStatistics:
        """Counters since start."""
        return ConversionStatistics(
            self._windows,
            self._converted,
            self._below_gate,
            self._not_due,
            self._failed,
            self._bad_rows,
            self._retries,
            self._requests,
            self._last_error,
        )

    async def run(self) -> None:
        """Lease rows in order, feed the chains, convert what is due; until cancelled.

        Rows are acked once every window they completed is handled; a crash re-offers the
        rest, and their chains start again (a window may then be converted twice: the result
        rows carry the same sequence number).
        """
        while True:
            rows = await self._outbox.lease(SINK, _LEASE_ROWS)
            if not rows:
                await self._outbox.wait_committed(timeout_s=1.0)
                continue
            for row in rows:
                for window in self._windows_of(row):
                    await self._handle(window)
            await self._outbox.ack(SINK, [r.id for r in rows])

    def _windows_of(self, row: StoredRecord) -> list[Window]:
        """Feed one row to its chain; the windows it completed.

        A row the chain cannot take (a device announcing an impossible rate, say) is counted
        and skipped, and its chain starts again: the sink, and with it the daemon, must not die
        of one odd row.
        """
        try:
            return self._feed(row)
        except (ValueError, ArithmeticError) as exc:
            self._bad_rows += 1
            self._chains.pop((row.record.device_id, row.record.stream), None)
            log.warning("conversion: row %d skipped: %s", row.id, exc)
            return []

    def _feed(self, row: StoredRecord) -> list[Window]:
        record = row.record
        samples = codec.waveform_samples(record).astype(np.float64)
        rate = record.sample_rate_hz
        if rate is None or rate <= 0 or not len(samples):
            return []
        key = (record.device_id, record.stream)
        chain = self._chains.get(key)
        if chain is None or chain.rate_hz != round(rate):
            kind: Kind = "ppg" if record.stream == "ppg" else "ecg"
            chain = SignalChain(
                kind,
                round(rate),
                samples.shape[1],
                ChainSettings.from_config(kind, self._dsp),
                device_id=record.device_id,
                stream=record.stream,
            )
            self._chains[key] = chain
        times = record.t0_s + np.arange(len(samples)) / rate
        return chain.push(times, samples)

    async def _handle(self, window: Window) -> None:
        self._windows += 1
        kind: Kind = "ppg" if window.stream == "ppg" else "ecg"
        threshold = self._dsp.sqi_min_ppg if kind == "ppg" else self._dsp.sqi_min_ecg
        if not quality.passes(kind, window.sqi, threshold):
            self._below_gate += 1
            return
        key = (window.device_id, window.stream)
        if window.t0_s - self._last_t0.get(key, -math.inf) < self._config.interval_s:
            self._not_due += 1
            return
        self._last_t0[key] = window.t0_s
        results = await self._convert(window)
        for stream, leads in results:
            record = codec.converted_record(
                window.device_id, stream, window.t0_s, window.rate_hz, leads
            )
            await self._outbox.put(record)
        if results:
            self._converted += 1

    async def _convert(self, w: Window) -> list[tuple[str, NDArray[np.float64]]]:
        """The result streams of one window; empty when the API refused it for good."""
        rate = w.rate_hz
        if w.stream == "ppg":
            ppg = w.samples[:, 0].tolist()
            ecg = await self._call(w.device_id, lambda: self._client.ppg_to_ecg(ppg, rate))
            if ecg is None:
                return []
            out = [(codec.ECG_FROM_PPG, np.asarray([ecg]))]
            if self._config.twelve_lead:
                twelve = await self._call(w.device_id, lambda: self._client.twelve_leads(ecg, rate))
                if twelve is not None:
                    out.append((codec.ECG_12, np.asarray(twelve)))
            return out
        if w.samples.shape[1] >= 3:
            leads = [w.samples[:, i].tolist() for i in range(3)]
            twelve = await self._call(
                w.device_id, lambda: self._client.twelve_from_three(leads, rate)
            )
        else:
            lead = w.samples[:, 0].tolist()
            twelve = await self._call(w.device_id, lambda: self._client.twelve_leads(lead, rate))
        return [] if twelve is None else [(codec.ECG_12, np.asarray(twelve))]

    async def _call(self, device_id: str, request: Callable[[], Awaitable[T]]) -> T | None:
        """One API call, paced, retried while the error table says so; None: refused."""
        attempt = 0
        while True:
            now = time.monotonic()
            if now < self._next_request_s:
                await asyncio.sleep(self._next_request_s - now)
            self._next_request_s = time.monotonic() + 60.0 / self._config.max_requests_per_min
            self._requests += 1
            try:
                return await request()
            except SinkError as exc:
                self._last_error = f"{exc} (code {exc.code})"
                attempt += 1
                decision = classify(exc, attempt, self._backoff)
                if isinstance(decision, DeadLetter):
                    log.error(
                        "conversion refused: %s",
                        self._last_error,
                        extra={"device_id": device_id, "request_id": exc.request_id},
                    )
                    self._failed += 1
                    return None
                self._retries += 1
                log.warning(
                    "conversion failed, retry in %.1f s: %s",
                    decision.after_s,
                    exc,
                    extra={"device_id": device_id, "request_id": exc.request_id},
                )
                await asyncio.sleep(decision.after_s)
