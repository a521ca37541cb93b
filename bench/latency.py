"""Latency benchmark (issue 7): notification -> MQTT subscriber, for vitals, 10 devices.

Runs the real daemon (``wgw run``) as a process against 10 simulated devices, a Mosquitto it
starts itself and the cloud emulator; a subscriber measures the time from each reading's
gateway timestamp (taken when the notification arrived) to its delivery. The baseline is the
same gateway with the live lane off (MQTT fed from the outbox after each commit).

Usage: python bench/latency.py [--readings N]
Last line: {"bench": "latency", "devices": n, "p50_ms": x, "p99_ms": x, ...}
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import aiomqtt
import numpy as np
import yaml
from stopping import stop, stop_popen  # bench/ is the script's folder, on sys.path

from gateway.emulator.app import EmulatorConfig
from gateway.emulator.serve import running_emulator

DEVICES = 10
MOSQUITTO = "/usr/sbin/mosquitto"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_broker(folder: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    conf = folder / "mosquitto.conf"
    user = "user root\n" if os.geteuid() == 0 else ""
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n{user}log_dest none\n"
    )
    process = subprocess.Popen(
        [MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    for _ in range(200):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.1):
                return process, port
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("mosquitto did not start")


async def measure(
    folder: Path, broker_port: int, emulator_url: str, *, live: bool, readings: int
) -> list[float]:
    config = {
        "gateway_id": "bench",
        "ble": {
            "backend": "sim",
            "sim": {
                "devices": [
                    {
                        "model": "strap",
                        "address": f"5A:00:00:00:00:{i:02X}",
                        "seed": i,
                        "heart_rate_interval_ms": 50,
                    }
                    for i in range(DEVICES)
                ]
            },
        },
        "devices": [{"id": f"d{i}", "address": f"5A:00:00:00:00:{i:02X}"} for i in range(DEVICES)],
        "storage": {"path": str(folder / f"wgw-{live}.sqlite")},
        "mqtt": {
            "port": broker_port,
            "topic_prefix": "lat",
            "live": live,
            "publish_waveforms": False,
        },
        "cloud": {
            "tcm": {
                "base_url": f"{emulator_url}/api/v1",
                "api_key": "tcm-demo-key",
                "plan": "enterprise",
            }
        },
        "http": {"enabled": False},
    }
    path = folder / f"config-{live}.yaml"
    path.write_text(yaml.safe_dump(config))
    delays: list[float] = []
    async with aiomqtt.Client("127.0.0.1", broker_port) as client:
        await client.subscribe("lat/bench/+/vitals", qos=1)
        daemon = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gateway",
            "--log-level",
            "WARNING",
            "run",
            "--config",
            str(path),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            seen: set[tuple[str, int]] = set()
            warmup = 50
            async with asyncio.timeout(120):
                async for message in client.messages:
                    arrived = time.time()
                    assert isinstance(message.payload, bytes)
                    body = json.loads(message.payload)
                    key = (body["device_id"], body["seq"])
                    if body["kind"] != "heart_rate" or key in seen:
                        continue
                    seen.add(key)
                    if len(seen) <= warmup:  # connections and the first commit settle
                        continue
                    stamp = datetime.fromisoformat(body["timestamp"]).timestamp()
                    delays.append((arrived - stamp) * 1000.0)
                    if len(delays) >= readings:
                        break
        finally:
            await stop(daemon, f"the daemon (live: {live})")
    return delays


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--readings", type=int, default=1000)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="wgw-latency-"))
    broker, port = start_broker(folder)
    try:
        async with running_emulator(EmulatorConfig(plan="enterprise"), "127.0.0.1", 0) as url:
            ours = await measure(folder, port, url, live=True, readings=args.readings)
            baseline = await measure(folder, port, url, live=False, readings=args.readings)
    finally:
        stop_popen(broker, "mosquitto")
    p = {
        name: (float(np.percentile(d, 50)), float(np.percentile(d, 99)))
        for name, d in (("ours", ours), ("baseline", baseline))
    }
    print(f"{'':<34}{'p50 ms':>10}{'p99 ms':>10}")
    print(f"{'live lane (publish on arrival)':<34}{p['ours'][0]:>10.1f}{p['ours'][1]:>10.1f}")
    print(
        f"{'baseline (publish after commit)':<34}{p['baseline'][0]:>10.1f}{p['baseline'][1]:>10.1f}"
    )
    print(
        json.dumps(
            {
                "bench": "latency",
                "devices": DEVICES,
                "readings": len(ours),
                "p50_ms": round(p["ours"][0], 2),
                "p99_ms": round(p["ours"][1], 2),
                "baseline_p50_ms": round(p["baseline"][0], 2),
                "baseline_p99_ms": round(p["baseline"][1], 2),
                "vs_baseline_p99": round(p["baseline"][1] / p["ours"][1], 2),
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
