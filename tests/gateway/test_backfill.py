"""Backfill end to end: a watch and a cuff out of range for ten minutes -> the daemon fetches
their records -> the outbox (each reading once, in time order), MQTT's backfill topic, the
upload API as batch records, gap records updated, and ``wgw queue``'s account of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import json
import sqlite3
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import aiomqtt

from buffers import inspect
from buffers.inspect import Selected
from buffers.records import OutboxRecord
from buffers.segments import SegmentLog, folder_for
from gateway.cli.export import run_export
from gateway.cli.queue import Selection, run_queue
from gateway.codec import iso_utc, vital_values
from gateway.config import Settings
from gateway.daemon import Daemon
from gateway.emulator.app import STATE_KEY
from tests.support import wait_for

if TYPE_CHECKING:
    from pathlib import Path

    import pytest
    from aiohttp.test_utils import TestServer

    from drivers.sim.devices import SimDevice
    from tests.conftest import Broker

SPEED = 50.0  # ten simulated minutes in twelve seconds
WATCH, CUFF = "5A:00:00:00:0B:01", "5A:00:00:00:0B:02"


def settings_for(tmp_path: Path, broker: Broker, emulator: TestServer, prefix: str) -> Settings:
    return Settings.model_validate(
        {
            "gateway_id": "gw",
            "ble": {
                "backend": "sim",
                "reconnect_min_s": 0.01,
                "reconnect_max_s": 0.1,
                "scan_timeout_s": 1.0,
                "sim": {
                    "advert_interval_ms": 5,
                    "speed": SPEED,
                    "devices": [
                        {"model": "watch", "address": WATCH, "blood_pressure_interval_s": 10},
                        {
                            "model": "cuff",
                            "address": CUFF,
                            "blood_pressure_interval_s": 10,
                            "clock_offset_s": -90,  # the cuff's clock is slow
                        },
                    ],
                },
            },
            "devices": [{"id": "watch", "address": WATCH}, {"id": "cuff", "address": CUFF}],
            "storage": {"path": str(tmp_path / "wgw.sqlite"), "flush_interval_ms": 20},
            "mqtt": {"host": broker.host, "port": broker.port, "topic_prefix": prefix},
            "cloud": {
                "tcm": {
                    "plan": "enterprise",
                    "base_url": str(emulator.make_url("/api/v1")),
                    "api_key": "tcm-demo-key",
                }
            },
            "sync": {"min_request_interval_s": 0.05, "record_interval_s": 0},
            "http": {"enabled": False},
        }
    )


def taken(device: SimDevice) -> list[str]:
    """The device timestamp of every blood pressure reading the device took, in order."""
    return [str(r.measurement.to_json()["timestamp"]) for r in device.records]


def stored(path: Path, device_id: str, stream: str) -> list[OutboxRecord]:
    """A device stream's rows as the outbox holds them, in the order it stored them."""
    log = SegmentLog(folder_for(path))
    with contextlib.closing(sqlite3.connect(path)) as db:
        rows = db.execute(
            "SELECT kind, seq, t0_s, encoding, backfilled, payload, seg, seg_offset, size"
            " FROM records WHERE device_id = ? AND stream = ? ORDER BY id",
            (device_id, stream),
        ).fetchall()
    try:
        return [
            OutboxRecord(
                kind,
                device_id,
                stream,
                seq,
                t0,
                log.payload(inline, seg, offset, size),
                encoding=encoding,
                backfilled=bool(backfilled),
            )
            for kind, seq, t0, encoding, backfilled, inline, seg, offset, size in rows
        ]
    finally:
        log.close()


async def test_a_ten_minute_spell_out_of_range_is_filled_from_the_devices_records(
    tmp_path: Path,
    broker: Broker,
    emulator: TestServer,
    topic_prefix: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Test every reading each device took held once, in time order, delivered to every sink."""
    settings = settings_for(tmp_path, broker, emulator, topic_prefix)
    daemon = Daemon(settings)
    assert daemon.sim_world is not None
    devices: dict[str, SimDevice] = {
        "watch": daemon.sim_world.peripherals[WATCH],  # type: ignore[dict-item]
        "cuff": daemon.sim_world.peripherals[CUFF],  # type: ignore[dict-item]
    }
    published: dict[str, list[dict[str, Any]]] = defaultdict(list)

    async def subscribe(ready: asyncio.Event) -> None:
        async with aiomqtt.Client(broker.host, broker.port) as client:
            await client.subscribe(f"{topic_prefix}/gw/+/+", qos=1)
            ready.set()
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                leaf = str(message.topic).rsplit("/", 1)[-1]
                if leaf in ("vitals", "backfill", "gaps"):
                    published[leaf].append(json.loads(message.payload))

    ready = asyncio.Event()
    subscriber = asyncio.create_task(subscribe(ready))
    await ready.wait()
    runner = asyncio.create_task(daemon.run())
    try:
        await daemon.wait_ready()
        await wait_for(lambda: all(len(d.records) >= 3 for d in devices.values()), timeout_s=15)
        before = {name: len(d.records) for name, d in devices.items()}
        for device in devices.values():
            device.go_out_of_range(600.0)
        await wait_for(lambda: all(d.in_range for d in devices.values()), timeout_s=20)
        after = {name: len(d.records) for name, d in devices.items()}
        await wait_for(
            lambda: all(len(d.records) >= after[n] + 3 for n, d in devices.items()), timeout_s=15
        )
        for device in devices.values():
            device.stop()  # nothing more is measured: what was taken must all arrive
        state = emulator.app[STATE_KEY]
        await wait_for(
            lambda: all(
                sum(r["blood_pressure"] is not None for r in state.records[name]) >= len(d.records)
                for name, d in devices.items()
            ),
            timeout_s=20,
        )
        await wait_for(lambda: len(published["backfill"]) >= 2 * 55, timeout_s=10)
    finally:
        daemon.stop()
        await runner
        subscriber.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await subscriber

    path = tmp_path / "wgw.sqlite"
    for name, device in devices.items():
        assert after[name] - before[name] >= 58, name  # the cuff took them while out of range
        rows = [r for r in stored(path, name, "blood_pressure") if r.kind == "vital"]
        stamps = [vital_values(r)["timestamp"] for r in rows]
        assert stamps == taken(device), name  # every reading it took, once, in time order
        assert [r.t0_s for r in rows] == sorted(r.t0_s for r in rows), name
        backfilled = [r for r in rows if r.backfilled]
        assert len(backfilled) >= 55, name
        # the gap: found, then the same gap again, filled
        gaps = [
            json.loads(r.payload) | {"t0_s": r.t0_s}
            for r in stored(path, name, "blood_pressure")
            if r.kind == "gap"
        ]
        assert [g.get("filled", False) for g in gaps] == [False, True], name
        assert gaps[0]["t0_s"] == gaps[1]["t0_s"]
        # the upload API: each reading once, the backfilled ones as batch records at their times
        uploaded = {r["timestamp"] for r in state.records[name] if r["blood_pressure"]}
        assert {iso_utc(r.t0_s) for r in rows} <= uploaded, name
    assert state.records_by_type["batch/incremental"] >= 2 * 55
    # MQTT: backfilled readings on their own topic, never on the live one
    assert all(m.get("backfilled") for m in published["backfill"])
    assert not any(m.get("backfilled") for m in published["vitals"])
    assert {m["device_id"] for m in published["backfill"]} == {"watch", "cuff"}
    filled = [g for g in published["gaps"] if g["filled"]]
    assert {(g["device_id"], g["stream"]) for g in filled} == {
        ("watch", "blood_pressure"),
        ("cuff", "blood_pressure"),
    }
    # the watch's other streams keep their gaps: only blood pressure is recorded
    report = {d.device_id: d for d in inspect.backfill(path)}
    assert report["cuff"].backfilled >= 55 and not report["cuff"].open_gaps
    assert report["cuff"].gaps_filled == 1
    assert report["watch"].gaps_filled == 1
    assert {"heart_rate", "spo2"} <= {g.stream for g in report["watch"].open_gaps}
    assert run_queue(path, "stats", Selection(), as_json=False) == 0
    out = capsys.readouterr().out
    assert "gaps filled" in out and "open: heart_rate" in out
    assert run_queue(path, "stats", Selection(), as_json=True) == 0
    as_json = json.loads(capsys.readouterr().out)
    cuff = next(d for d in as_json["backfill"] if d["device_id"] == "cuff")
    assert (
        cuff["backfilled"] >= 55 and cuff["open_gaps"] == [] and "blood_pressure" in cuff["cursors"]
    )
    # the export: the cuff's readings in time order, the backfilled ones marked
    assert run_export(path, Selected("cuff"), "csv", tmp_path / "csv") == 0
    with (tmp_path / "csv" / "cuff_vitals.csv").open() as f:
        exported = [row for row in csv.DictReader(f) if row["kind"] == "blood_pressure"]
    assert [json.loads(row["values"])["timestamp"] for row in exported] == taken(devices["cuff"])
    assert sum(row["backfilled"] == "1" for row in exported) >= 55
