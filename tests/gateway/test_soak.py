"""Five simulated devices for 60 simulated seconds with link drops, through the real daemon."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import sqlite3
from typing import TYPE_CHECKING

import pytest

from buffers.segments import SegmentLog, folder_for
from gateway.config import Settings
from gateway.daemon import Daemon
from tests.support import BACKENDS, wait_for

if TYPE_CHECKING:
    from pathlib import Path

    from aiohttp.test_utils import TestServer

    from drivers.sim.devices import SimDevice

# model, address, PMD measurement, sample rate, resolution, channels
DEVICES = [
    ("watch", "5A:00:00:00:00:01", "ppg", 55, 22, 4),
    ("strap", "5A:00:00:00:00:02", "ecg", 130, 14, 1),
    ("armband", "5A:00:00:00:00:03", "ppg", 135, 22, 4),
    ("armband", "5A:00:00:00:00:04", "ppg", 55, 22, 4),
    ("patch", "5A:00:00:00:00:05", "ecg", 500, 24, 3),
]
SPEED = 10.0


def settings(tmp_path: Path, emulator: TestServer, backend: str = "sim") -> Settings:
    sim = [
        {"model": model, "address": address, "seed": i, "pmd_rate_hz": rate}
        for i, (model, address, _, rate, _, _) in enumerate(DEVICES)
    ]
    devices = [
        {
            "id": f"{model}-{i}",
            "address": address,
            "pmd": [
                {"measurement": m, "sample_rate_hz": rate, "resolution_bits": bits, "channels": ch}
            ],
        }
        for i, (model, address, m, rate, bits, ch) in enumerate(DEVICES)
    ]
    return Settings.model_validate(
        {
            "ble": {
                "backend": backend,
                "reconnect_min_s": 0.01,
                "reconnect_max_s": 0.1,
                "stream_silence_s": 5.0,
                "sim": {"devices": sim, "advert_interval_ms": 10, "speed": SPEED},
            },
            "devices": devices,
            "storage": {"path": str(tmp_path / "wgw.sqlite"), "flush_interval_ms": 100},
            "mqtt": {"enabled": False},
            "cloud": {
                "tcm": {
                    "base_url": str(emulator.make_url("/api/v1")),
                    "api_key": "tcm-demo-key",
                    "plan": "enterprise",
                }
            },
            "sync": {"min_request_interval_s": 0.05},
            "http": {"enabled": False},
        }
    )


@pytest.mark.parametrize("backend", BACKENDS)
async def test_five_devices_with_link_drops_lose_nothing_unaccounted(
    tmp_path: Path, emulator: TestServer, backend: str
) -> None:
    """Test reconnects, no leaked tasks or links, every gap marked, stored == sent: on the
    simulator's backend and on bumble's stack (raw and delta-compressed PMD frames over ATT).
    """
    daemon = Daemon(settings(tmp_path, emulator, backend))
    assert daemon.sim_world is not None
    devices: list[SimDevice] = list(daemon.sim_world.peripherals.values())  # type: ignore[arg-type]
    tasks_before = len(asyncio.all_tasks())
    runner = asyncio.create_task(daemon.run())
    await daemon.wait_ready()
    rng = random.Random(1)
    clock = daemon.sim_world.clock
    end_s = clock.now_s() + 60.0
    while clock.now_s() < end_s:
        await asyncio.sleep(rng.uniform(2.0, 5.0) / SPEED)  # a drop every few simulated seconds
        rng.choice(devices).drop_link()
    for device in devices:  # every device back, and streaming again, before we stop
        await wait_for(lambda d=device: d.connected, timeout_s=10)  # type: ignore[misc]

    async def all_linked() -> bool:  # the central's side too (over bumble it comes later)
        return all(d.connected for d in (await daemon.statistics()).devices)

    await wait_for(all_linked, timeout_s=10)

    async def all_streaming() -> bool:  # fresh figures each time (a snapshot only ages)
        return all(
            any(s.units and s.last_time_s and s.last_time_s > clock.now_s() - 2 for s in d.streams)
            for d in (await daemon.statistics()).devices
        )

    await wait_for(all_streaming)
    for device in devices:
        device.stop()
    daemon.stop()
    await runner
    stats = await daemon.statistics()

    assert len(asyncio.all_tasks()) == tasks_before, "tasks leaked"
    assert not any(d.connected for d in devices), "a link outlived the daemon"
    log = SegmentLog(folder_for(tmp_path / "wgw.sqlite"))  # where the payloads are
    with sqlite3.connect(tmp_path / "wgw.sqlite") as db:
        rows = [
            (kind, device_id, stream, shape, log.payload(inline, seg, at, size), t0, rate)
            for kind, device_id, stream, shape, inline, seg, at, size, t0, rate in db.execute(
                "SELECT kind, device_id, stream, shape, payload, seg, seg_offset, size, t0_s,"
                " sample_rate_hz FROM records"
            )
        ]
    log.close()
    total_drops = total_gaps = 0
    for i, device in enumerate(devices):
        device_id = f"{DEVICES[i][0]}-{i}"
        link = next(s for s in stats.devices if s.device_id == device_id)
        drops = device.link.link_drops
        total_drops += drops
        assert device.link.connects == drops + 1
        if backend == "sim":  # a connect is atomic there
            assert link.links_lost == drops and link.connects == device.link.connects
        else:  # a drop while the central still sets the link up fails that attempt instead
            failed = sum((link.failures or {}).values()) - link.links_lost
            assert link.links_lost <= drops <= link.links_lost + failed
            assert link.connects + failed >= device.link.connects
        measurement = DEVICES[i][2]
        chunks = sorted(
            (t0, json.loads(shape)[0], rate)
            for kind, dev, stream, shape, _, t0, rate in rows
            if kind == "waveform" and dev == device_id and stream == measurement
        )
        stored = sum(n for _, n, _ in chunks)
        counters = device.counters[measurement]
        assert stored == counters.sent == counters.produced - counters.lost_link_down
        readings = sum(
            1
            for kind, dev, stream, *_ in rows
            if kind == "vital" and dev == device_id and stream == "heart_rate"
        )
        assert readings == device.counters["heart_rate"].sent
        gaps = sorted(
            (t0, json.loads(p))
            for kind, dev, stream, _, p, t0, _ in rows
            if kind == "gap" and dev == device_id and stream == measurement
        )
        assert all(g["reason"] == "link_lost" for _, g in gaps)
        # A reconnect quicker than one packet loses nothing: the device clock shows it
        # continuous, and no gap is marked; drops with no data between them make one gap.
        assert len(gaps) <= drops
        total_gaps += len(gaps)
        # Every hole between stored chunks is a gap marker, and every marker is such a hole.
        holes = []
        for (t0, n, rate), (next_t0, next_n, _) in itertools.pairwise(chunks):
            end = t0 + n / rate
            if next_t0 - end > 0.5 * next_n / rate:
                holes.append((end, next_t0))
        assert len(holes) == len(gaps)
        for (hole_t0, hole_t1), (gap_t0, gap) in zip(holes, gaps, strict=True):
            assert abs(gap_t0 - hole_t0) < 0.05
            assert abs(gap["t1_s"] - hole_t1) < 0.05
    assert total_drops >= 10
    assert total_gaps >= 3
