"""What a restart leaves in the data: after ``kill -9`` (and after a clean stop) a real ``wgw
run`` marks the time from each stream's stored end to its first data again as a ``restart``
gap, so that no hole in a stored stream goes unmarked."""

from __future__ import annotations

import asyncio
import itertools
import signal
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
import yaml

from buffers import inspect
from buffers.inspect import Selected
from drivers.frames import GapMarker, WaveformChunk
from gateway import codec
from tests.support import STRAP_ECG, daemon_config, free_port, spawn_wgw, wait_for

if TYPE_CHECKING:
    from pathlib import Path

    from aiohttp.test_utils import TestServer

STRAP, WATCH = "5A:00:00:00:00:31", "5A:00:00:00:00:01"
RATE_HZ = 130.0


def strap_and_watch(tmp_path: Path, emulator: TestServer, port: int) -> Path:
    raw = daemon_config(
        tmp_path,
        str(emulator.make_url("")),
        [
            {"model": "strap", "address": STRAP},
            {"model": "watch", "address": WATCH, "heart_rate_interval_ms": 200},
        ],
        [
            {
                "id": "strap",
                "address": STRAP,
                "pmd": [STRAP_ECG],
            },
            {"id": "watch", "address": WATCH},
        ],
        http={"enabled": True, "port": port},
    )
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


async def start(config: Path, log: Path) -> asyncio.subprocess.Process:
    with log.open("ab") as out:
        return await spawn_wgw("run", "--config", str(config), stdout=out, stderr=out)


async def stored_after(daemon: asyncio.subprocess.Process, port: int, frames: int) -> None:
    """Wait until this run has stored ``frames`` frames (its status page says so)."""

    async def enough() -> bool:
        assert daemon.returncode is None, "the daemon ended"
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.get(f"http://127.0.0.1:{port}/api/status") as r,
            ):
                status: dict[str, Any] = await r.json()
        except (aiohttp.ClientError, OSError):
            return False
        return int(status["frames_stored"]) >= frames

    await wait_for(enough, timeout_s=30, interval_s=0.1)


def holes_and_gaps(
    db: Path, device: str, stream: str
) -> tuple[list[tuple[float, float]], list[tuple[float, float, str]]]:
    """A stream's holes between stored data rows (longer than a sample period, or than the
    readings' interval), and its gap markers (from, to, reason)."""
    readings = [
        codec.reading_of(r).frame
        for r in inspect.selected_records(db, Selected(device))
        if r.stream == stream
    ]
    gaps = [(g.t0_s, g.t1_s, g.reason) for g in readings if isinstance(g, GapMarker)]
    data = [
        (f.t0_s, f.t0_s + f.samples.shape[0] / f.sample_rate_hz)
        if isinstance(f, WaveformChunk)
        else (f.t0_s, f.t0_s)
        for f in readings
        if not isinstance(f, GapMarker)
    ]
    step = 1.5 / RATE_HZ if stream == "ecg" else 0.5  # heart rate: a reading every 0.2 s
    holes = [
        (a_end, b_t0) for (_, a_end), (b_t0, _) in itertools.pairwise(data) if b_t0 - a_end > step
    ]
    return holes, gaps


@pytest.mark.timeout(150)
async def test_every_hole_a_kill_and_a_stop_leave_is_a_marked_restart_gap(
    tmp_path: Path, emulator: TestServer
) -> None:
    """Test ``kill -9``, a start, SIGTERM, a start: in the strap's ECG and the watch's heart
    rate every hole between stored rows is covered by a gap marker, the two restarts' by
    ``restart`` gaps from the stored end (what the kill lost, and the time down) to the
    first data after."""
    port = free_port()
    config = strap_and_watch(tmp_path, emulator, port)
    log = tmp_path / "daemon.log"
    for ending in (signal.SIGKILL, signal.SIGTERM, None):
        daemon = await start(config, log)
        try:
            await stored_after(daemon, port, 40)
        finally:
            daemon.send_signal(ending or signal.SIGTERM)
            status = await asyncio.wait_for(daemon.wait(), 30)
        assert status == (-9 if ending == signal.SIGKILL else 0), log.read_text()[-2000:]

    db = tmp_path / "wgw.sqlite"
    for device, stream in (("strap", "ecg"), ("watch", "heart_rate")):
        holes, gaps = holes_and_gaps(db, device, stream)
        restarts = [(t0, t1) for t0, t1, reason in gaps if reason == "restart"]
        assert len(restarts) == 2, (stream, gaps)
        for a_end, b_t0 in holes:
            assert any(t0 <= a_end + 1e-3 and t1 >= b_t0 - 1e-3 for t0, t1, _ in gaps), (
                stream,
                (a_end, b_t0),
                gaps,
            )
        for t0, t1 in restarts:  # each exactly a hole: from the stored end to the next data
            assert any(abs(t0 - a) < 1e-3 and abs(t1 - b) < 1e-3 for a, b in holes), (t0, t1)
