"""Outbox benchmark (issue 4): throughput against persist-queue and a naive writer, and the
bytes written to disk per byte of device payload over one simulated hour.

Usage: python bench/outbox.py [--rows N] [--runs N] [--hours H]
Last line: {"bench": "outbox", "vs_persist_queue": x, "vs_naive": x,
            "bytes_written_per_payload_byte": x}
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import aiosqlite
import numpy as np
import persistqueue

from buffers.outbox import Outbox
from buffers.records import OutboxRecord
from drivers.frames import VitalReading, WaveformChunk
from drivers.gatt.heart_rate import HeartRateMeasurement, encode_heart_rate_measurement
from drivers.polar import pmd
from drivers.sim.devices import SimDevice, preset
from gateway import codec

ROOT = Path(__file__).resolve().parents[1]
VITAL_PAYLOAD = (
    b'{"heart_rate_bpm":72,"sensor_contact":"detected","rr_intervals_ms":[833.0]}'.ljust(100)
)


def vital(i: int) -> OutboxRecord:
    return OutboxRecord("vital", "d", "heart_rate", i, 1.8e9 + i, VITAL_PAYLOAD)


def waveform(i: int, samples: np.ndarray) -> OutboxRecord:  # type: ignore[type-arg]
    return codec.to_record(WaveformChunk("d", "ecg", i, 1.8e9 + i, 130.0, samples))


# --- throughput -------------------------------------------------------------------------------


async def ours(folder: Path, records: list[OutboxRecord]) -> float:
    """Rows per second through put -> commit -> lease -> ack, producer and sink concurrent."""
    async with Outbox(folder / "ours.sqlite", {"s": lambda r: True}) as outbox:
        start = time.perf_counter()

        async def sink() -> None:
            done = 0
            while done < len(records):
                rows = await outbox.lease("s", 500)
                if not rows:
                    await outbox.wait_committed(0.05)
                    continue
                await outbox.ack("s", [r.id for r in rows])
                done += len(rows)

        consumer = asyncio.create_task(sink())
        for r in records:
            await outbox.put(r)
        await outbox.flush()
        await consumer
        return len(records) / (time.perf_counter() - start)


async def naive(folder: Path, records: list[OutboxRecord]) -> float:
    """One transaction per row in, one per row out: the obvious aiosqlite queue."""
    async with aiosqlite.connect(folder / "naive.sqlite", isolation_level=None) as db:
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=NORMAL")
        await db.execute("CREATE TABLE q (id INTEGER PRIMARY KEY, payload BLOB)")
        start = time.perf_counter()
        for r in records:
            await db.execute("BEGIN")
            await db.execute("INSERT INTO q (payload) VALUES (?)", (r.payload,))
            await db.execute("COMMIT")
        for _ in records:
            async with db.execute("SELECT id, payload FROM q ORDER BY id LIMIT 1") as cur:
                row = await cur.fetchone()
            assert row is not None
            await db.execute("BEGIN")
            await db.execute("DELETE FROM q WHERE id = ?", (row[0],))
            await db.execute("COMMIT")
        return len(records) / (time.perf_counter() - start)


def persist_queue(folder: Path, records: list[OutboxRecord]) -> float:
    """persist-queue's SQLiteAckQueue (WAL), put then get + ack, at synchronous=NORMAL."""
    q = persistqueue.SQLiteAckQueue(str(folder / "pq"), auto_commit=True)
    q._conn.execute("PRAGMA synchronous=NORMAL")
    start = time.perf_counter()
    for r in records:
        q.put(r.payload)
    for _ in records:
        item = q.get(block=False)
        q.ack(item)
    rate = len(records) / (time.perf_counter() - start)
    q.close()
    return rate


# --- bytes written ------------------------------------------------------------------------------


def write_bytes() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    return 0


FLEET = ["watch"] * 4 + ["strap"] * 3 + ["armband"] * 2 + ["patch"]


class Fleet:
    """One simulated second of every device's notifications: payload bytes and frames.

    A minute of each device's packets is encoded once and replayed with new sequence numbers
    and times, so the hour costs what the storage costs, not what the simulation costs.
    """

    def __init__(self, models: list[str]) -> None:
        self.minute: list[list[tuple[int, object]]] = []  # per second: (payload bytes, frame)
        devices = [
            SimDevice(preset(m, f"5A:00:00:00:01:{i:02X}", m, seed=i)) for i, m in enumerate(models)
        ]  # type: ignore[arg-type]
        for second in range(60):
            items: list[tuple[int, object]] = []
            for i, d in enumerate(devices):
                hr = HeartRateMeasurement(
                    round(d.heart.heart_rate_bpm(second)), "detected", None, (800,)
                )
                items.append(
                    (
                        len(encode_heart_rate_measurement(hr)),
                        ("vital", i, "heart_rate", hr.to_json()),
                    )
                )
                if d.spec.spo2_interval_s:
                    items.append(
                        (7, ("vital", i, "spo2", {"spo2_pct": 97.0, "pulse_rate_bpm": 70.0}))
                    )
                p = d.spec.pmd
                assert p is not None
                per_packet = p.samples_per_packet
                start = second * p.sample_rate_hz
                for k in range(start // per_packet, (start + p.sample_rate_hz) // per_packet):
                    t = (np.arange(k * per_packet, (k + 1) * per_packet) + 1.0) / p.sample_rate_hz
                    samples = d._pmd_samples(p, t)
                    frame = pmd.PmdFrame(
                        p.measurement, pmd.COMPRESSED if p.compressed else 0, 0, samples
                    )
                    size = len(pmd.encode_pmd_data(frame, resolution_bits=p.resolution_bits))
                    items.append((size, ("waveform", i, p.measurement, samples, p.sample_rate_hz)))
            self.minute.append(items)

    def second(self, s: int) -> tuple[int, list[OutboxRecord]]:
        payload = 0
        records = []
        for n, (size, item) in enumerate(self.minute[s % 60]):
            payload += size
            kind, i, stream, *rest = item  # type: ignore[misc]
            t = 1.8e9 + s
            if kind == "vital":
                frame: object = VitalReading(f"d{i}", stream, s * 1000 + n, t, rest[0])
            else:
                frame = WaveformChunk(f"d{i}", stream, s * 1000 + n, t, float(rest[1]), rest[0])
            records.append(codec.to_record(frame))  # type: ignore[arg-type]
        return payload, records


async def hour(
    folder: Path, models: list[str], seconds: int, flush_s: int = 1
) -> tuple[float, int, int]:
    """Bytes written per payload byte with one group commit every ``flush_s`` simulated seconds
    (1: the default flush interval), the index committing every 60 simulated seconds (the
    default; it fsyncs the segment log first, as the daemon does), and two sinks (MQTT and
    upload) acknowledging every vitals row.
    """
    fleet = Fleet(models)
    path = folder / f"hour-{len(models)}-{flush_s}.sqlite"
    wants = {
        "mqtt": lambda r: r.kind in ("vital", "gap"),
        "health_upload": lambda r: r.kind == "vital",
    }
    payload = 0
    now = [0.0]  # simulated monotonic seconds
    before = write_bytes()
    async with Outbox(path, wants, clock=lambda: now[0]) as outbox:
        for s in range(seconds):
            size, records = fleet.second(s)
            payload += size
            for r in records:
                await outbox.put(r)
            now[0] += 1.0
            if (s + 1) % flush_s:
                continue
            await outbox.flush(index=False)  # what the writer's timer does every interval
            for sink in wants:
                rows = await outbox.lease(sink, 10_000)
                await outbox.ack(sink, [r.id for r in rows])
    written = write_bytes() - before
    return written / payload, written, payload


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=3000, help="rows per throughput run")
    parser.add_argument("--hours", type=float, default=1.0, help="simulated hours of 10 devices")
    parser.add_argument("--runs", type=int, default=7, help="interleaved throughput runs")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="wgw-bench-", dir=ROOT / "bench"))
    try:
        vitals = [vital(i) for i in range(args.rows)]
        ecg = np.arange(130, dtype=np.int32).reshape(130, 1) * 7
        chunks = [waveform(i, ecg) for i in range(args.rows)]
        # interleaved runs, the median kept: one run is a fraction of a second, and a noisy
        # machine slows whichever run it hits; the ratios are taken run by run
        runs: dict[str, list[float]] = {"ours": [], "naive": [], "pq": []}
        for k in range(args.runs):
            run = work / f"run{k}"
            run.mkdir()
            runs["ours"].append(await ours(run, vitals))
            runs["naive"].append(await naive(run, vitals))
            runs["pq"].append(persist_queue(run, vitals))
        ours_v, naive_v, pq_v = (statistics.median(runs[k]) for k in ("ours", "naive", "pq"))
        vs_pq = [o / p for o, p in zip(runs["ours"], runs["pq"], strict=True)]
        vs_naive = [o / n for o, n in zip(runs["ours"], runs["naive"], strict=True)]
        ours_w = await ours(work / "w", chunks) if (work / "w").mkdir() is None else 0.0
        naive_w = await naive(work / "w", chunks)
        seconds = int(args.hours * 3600)
        ratio10, written10, payload10 = await hour(work, FLEET, seconds)
        ratio1, _, _ = await hour(work, ["watch"], seconds)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{'throughput (append + lease + ack)':<40}{'rows/s':>12}")
    for name, rate in [
        ("ours, 100-byte vitals", ours_v),
        ("naive aiosqlite, vitals", naive_v),
        ("persist-queue SQLiteAckQueue, vitals", pq_v),
        ("ours, 130-sample chunks", ours_w),
        ("naive aiosqlite, chunks", naive_w),
    ]:
        print(f"{name:<40}{rate:>12,.0f}")
    for name, ratios in (("vs naive", vs_naive), ("vs persist-queue", vs_pq)):
        print(
            f"{name}: median {statistics.median(ratios):.1f}x over {len(ratios)} interleaved runs"
            f" (spread {min(ratios):.1f}x-{max(ratios):.1f}x)"
        )
    print(
        f"disk: {args.hours:g} h of 10 devices: {written10 / 1e6:.1f} MB written for "
        f"{payload10 / 1e6:.1f} MB of payload = {ratio10:.2f} bytes per payload byte "
        f"(one watch alone: {ratio1:.2f})"
    )
    print(
        json.dumps(
            {
                "bench": "outbox",
                "vs_persist_queue": round(statistics.median(vs_pq), 2),
                "vs_persist_queue_min": round(min(vs_pq), 2),
                "vs_persist_queue_max": round(max(vs_pq), 2),
                "vs_naive": round(statistics.median(vs_naive), 2),
                "vs_naive_min": round(min(vs_naive), 2),
                "vs_naive_max": round(max(vs_naive), 2),
                "bytes_written_per_payload_byte": round(ratio10, 3),
                "bytes_written_per_payload_byte_one_device": round(ratio1, 3),
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
