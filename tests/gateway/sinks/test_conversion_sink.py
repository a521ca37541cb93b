"""ConversionSink over an outbox and the emulator: the quality gate, the pace, the error table."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import aiohttp
import numpy as np
from pydantic import SecretStr

from buffers.outbox import Outbox
from drivers.frames import WaveformChunk
from drivers.sim.signals import HeartModel
from gateway import codec
from gateway.clients.heartvoice import HeartVoiceClient
from gateway.config import ConversionConfig, DspConfig, HeartVoiceConfig
from gateway.emulator.app import STATE_KEY
from gateway.sinks import conversion
from tests.support import wait_for

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from aiohttp.test_utils import TestServer

RATE = 55
T0 = 1_790_000_000.0


def ppg_chunks(seconds: int, *, motion_from_s: float | None = None) -> list[WaveformChunk]:
    """A watch's PPG (one channel) in one-second chunks; optionally a waving hand from then on."""
    heart = HeartModel(seed=2)
    t = np.arange(0, seconds, 1 / RATE)
    ppg = 30000.0 * heart.pulse_wave(t) + heart.noise(t.shape, 150.0)
    if motion_from_s is not None:
        motion = t >= motion_from_s
        rng = np.random.default_rng(0)
        ppg[motion] += 60000.0 * np.sin(2 * np.pi * 1.3 * t[motion]) + rng.normal(
            0, 30000, motion.sum()
        )
    samples = ppg.round().astype(np.int32).reshape(-1, 1)
    return [
        WaveformChunk("w", "ppg", s, T0 + s, float(RATE), samples[s * RATE : (s + 1) * RATE])
        for s in range(seconds)
    ]


def settled(windows: int) -> Callable[[conversion.ConversionStatistics], bool]:
    """True once ``windows`` windows are complete and each has its outcome."""

    def done(s: conversion.ConversionStatistics) -> bool:
        return s.windows == windows == s.converted + s.below_gate + s.not_due + s.failed

    return done


async def run_sink(
    tmp_path: Path,
    emulator: TestServer,
    chunks: list[WaveformChunk],
    config: ConversionConfig,
    until: Callable[[conversion.ConversionStatistics], bool],
) -> tuple[conversion.ConversionStatistics, dict[str, int]]:
    hv = HeartVoiceConfig(
        base_url=str(emulator.make_url("")).rstrip("/"), api_key=SecretStr("heartvoice-demo-key")
    )
    async with (
        Outbox(
            tmp_path / "o.sqlite", {conversion.SINK: conversion.wants}, flush_interval_ms=5
        ) as outbox,
        aiohttp.ClientSession() as session,
    ):
        sink = conversion.ConversionSink(outbox, HeartVoiceClient(session, hv), config, DspConfig())
        for chunk in chunks:
            await outbox.put(codec.to_record(chunk))
        task = asyncio.create_task(sink.run())
        await wait_for(lambda: until(sink.statistics()), timeout_s=20)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await outbox.flush()
        stats = await outbox.statistics()
    counts = {"rows": stats.total_rows, "backlog": stats.backlog[conversion.SINK].pending}
    return sink.statistics(), counts


async def test_windows_below_the_gate_are_not_sent_and_counted(
    tmp_path: Path, emulator: TestServer
) -> None:
    """Test 45 s of PPG, waving from 32 s: three windows converted, the fourth kept back.

    (Windows start after the filter settles, at 2 s; the fifth is not complete.)
    """
    state = emulator.app[STATE_KEY]
    stats, counts = await run_sink(
        tmp_path,
        emulator,
        ppg_chunks(45, motion_from_s=32),
        ConversionConfig(enabled=True, interval_s=0, max_requests_per_min=600),
        settled(4),
    )
    assert (stats.converted, stats.below_gate, stats.failed) == (3, 1, 0)
    assert state.heartvoice_requests == 3
    assert counts["rows"] == 45 + 3  # the chunks and one ECG row per converted window
    assert counts["backlog"] == 0


async def test_interval_keeps_the_windows_that_are_due(
    tmp_path: Path, emulator: TestServer
) -> None:
    """Test interval_s 25 over four clean 10 s windows: two are due, two are not."""
    stats, _ = await run_sink(
        tmp_path,
        emulator,
        ppg_chunks(45),
        ConversionConfig(enabled=True, interval_s=25, max_requests_per_min=600),
        settled(4),
    )
    assert (stats.converted, stats.not_due) == (2, 2)


async def test_a_503_is_retried_and_a_400_is_counted_as_failed(
    tmp_path: Path, emulator: TestServer
) -> None:
    """Test the error table: 503 twice then success; 400 refused for good, the sink goes on."""
    state = emulator.app[STATE_KEY]
    state.faults.fail_next.extend([503, 503, 400])
    stats, counts = await run_sink(
        tmp_path,
        emulator,
        ppg_chunks(35),
        ConversionConfig(
            enabled=True, interval_s=0, max_requests_per_min=600, retry_min_s=0.01, retry_max_s=0.05
        ),
        settled(3),
    )
    assert stats.retries == 2
    assert stats.failed == 1
    assert stats.converted == 2
    assert "errorCode 400" in (stats.last_error or "")
    assert counts["backlog"] == 0


async def test_a_row_no_chain_can_take_is_skipped_not_fatal(
    tmp_path: Path, emulator: TestServer
) -> None:
    """Test a chunk claiming 1 Hz (no 0.5-8 Hz band exists there) among good ones."""
    chunks = ppg_chunks(25)
    odd = WaveformChunk("x", "ppg", 0, T0, 1.0, np.ones((5, 1), dtype=np.int32))
    stats, _ = await run_sink(
        tmp_path,
        emulator,
        [odd, *chunks],
        ConversionConfig(enabled=True, interval_s=0, max_requests_per_min=600),
        settled(2),
    )
    assert stats.bad_rows == 1
    assert stats.converted == 2
