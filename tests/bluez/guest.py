"""Inside the VM: a real ``wgw run`` on bleak's BlueZ backend against the served wearables.

BlueZ's bluetoothd and D-Bus run beside it, the wearables in another process
(``tests.bluez.peripherals``). The run's store is then checked against what each device sent;
the findings go to ``OUT/result.json`` (the host side prints them).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from buffers import inspect
from buffers.inspect import Selected
from drivers.frames import GapMarker, VitalReading, WaveformChunk
from gateway import codec
from tests.support import STRAP_ECG

WATCH, STRAP, CUFF = "5A:00:00:00:00:01", "5A:00:00:00:00:31", "5A:00:00:00:00:02"
PASSKEY = 314159  # the cuff shows it; the daemon's config has it
RUN_S = 100.0  # of the daemon, on an emulated CPU (TCG: a few times slower than the host)
HTTP_PORT = 8080
WATCH_INTERVAL_S = 0.25


def configs(work: Path) -> tuple[Path, Path]:
    """The peripherals' config (the simulated devices) and the daemon's (BlueZ, same ids)."""
    sim = {
        "gateway_id": "vm",
        "ble": {
            "backend": "sim",
            "sim": {
                "devices": [
                    {
                        "model": "watch",
                        "address": WATCH,
                        "heart_rate_interval_ms": int(WATCH_INTERVAL_S * 1000),
                        # three drops: four connects (notifications must not come twice)
                        "faults": [
                            {"kind": "link_drop", "at_s": at_s} for at_s in (35.0, 50.0, 65.0)
                        ],
                    },
                    {"model": "strap", "address": STRAP},
                    {
                        "model": "cuff",
                        "address": CUFF,
                        "blood_pressure_interval_s": 2,
                        "security": "passkey",
                        "passkey": PASSKEY,
                    },
                ]
            },
        },
        "devices": [],
        "cloud": {"tcm": {"base_url": "http://127.0.0.1:9/api/v1", "api_key": "k"}},
    }
    daemon = {
        "gateway_id": "vm",
        # an emulated CPU: BlueZ takes seconds to start a scan and to connect
        "ble": {
            "backend": "bluez",
            "scan_timeout_s": 15,
            "connect_timeout_s": 20,
            "reconnect_max_s": 2,
        },
        "devices": [
            {"id": "watch", "address": WATCH},
            {
                "id": "strap",
                "address": STRAP,
                "pmd": [STRAP_ECG],
            },
            {"id": "cuff", "address": CUFF, "pairing": "passkey", "passkey": f"{PASSKEY:06d}"},
        ],
        "storage": {"path": str(work / "wgw.sqlite")},
        "mqtt": {"enabled": False},
        "http": {"enabled": True, "host": "127.0.0.1", "port": HTTP_PORT},
        "cloud": {"tcm": {"base_url": "http://127.0.0.1:9/api/v1", "api_key": "k"}},
    }
    paths = work / "sim.yaml", work / "daemon.yaml"
    for path, config in zip(paths, (sim, daemon), strict=True):
        path.write_text(yaml.safe_dump(config))
    return paths


async def run(out: Path, work: Path) -> dict[str, Any]:
    sim_config, daemon_config = configs(work)
    truth_path = work / "truth.json"
    with (out / "peripherals.log").open("wb") as plog, (out / "daemon.log").open("wb") as dlog:
        peripherals = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.bluez.peripherals", str(sim_config), str(truth_path),
            stdout=plog, stderr=plog,
        )  # fmt: skip
        started = time.monotonic()
        daemon = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway", "run", "--config", str(daemon_config),
            stdout=dlog, stderr=dlog,
        )  # fmt: skip
        await asyncio.sleep(RUN_S)
        peripherals.send_signal(signal.SIGUSR1)  # the devices stop; what they sent arrives
        await asyncio.sleep(3)
        status = await daemon_status()
        daemon.send_signal(signal.SIGTERM)
        exit_status = await asyncio.wait_for(daemon.wait(), 60)
        peripherals.send_signal(signal.SIGTERM)
        await asyncio.wait_for(peripherals.wait(), 60)
    truth = {d["address"]: d for d in json.loads(truth_path.read_text())}
    links = {d["device_id"]: d for d in status["devices"]}
    return {
        "daemon_exit": exit_status,
        "ran_s": round(time.monotonic() - started, 1),
        "watch": watch_findings(work / "wgw.sqlite", truth[WATCH], links["watch"]),
        "strap": strap_findings(work / "wgw.sqlite", truth[STRAP], links["strap"]),
        "cuff": cuff_findings(work / "wgw.sqlite", truth[CUFF], links["cuff"]),
    }


async def daemon_status() -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{HTTP_PORT}/api/status") as r,
    ):
        status: dict[str, Any] = await r.json()
    return status


def link_figures(link: dict[str, Any]) -> dict[str, Any]:
    """What the daemon's status says of a device's link."""
    return {k: link.get(k) for k in ("connects", "links_lost", "decode_errors", "mtu")}


def frames(db: Path, device: str, stream: str) -> list[Any]:
    return [
        codec.reading_of(r).frame
        for r in inspect.selected_records(db, Selected(device))
        if r.stream == stream
    ]


def watch_findings(db: Path, truth: dict[str, Any], link: dict[str, Any]) -> dict[str, Any]:
    """Heart rate across link drops: no reading stored twice (BlueZ was seen to deliver each
    notification twice after a second connect), at most the one in flight lost at each drop
    (marked by its gap), in time order."""
    got = frames(db, "watch", "heart_rate")
    live = [f for f in got if isinstance(f, VitalReading) and not f.backfilled]
    times = [r.t0_s for r in live]
    closest_s = min((b - a for a, b in itertools.pairwise(times)), default=None)
    sent, drops = truth["streams"]["heart_rate"]["sent"], truth["link_drops"]
    gaps = [g.reason for g in got if isinstance(g, GapMarker)]
    return {
        "sent": sent,
        "stored": len(live),
        "closest_readings_s": closest_s,
        "in_order": times == sorted(times),
        "device_link_drops": drops,
        "gaps": gaps,
        **link_figures(link),
        "ok": (
            sent - drops <= len(live) <= sent
            and closest_s is not None
            and closest_s > WATCH_INTERVAL_S / 2
            and times == sorted(times)
            and link["links_lost"] >= 2
            and link["connects"] == link["links_lost"] + 1
            and gaps.count("link_lost") == link["links_lost"]
        ),
    }


def strap_findings(db: Path, truth: dict[str, Any], link: dict[str, Any]) -> dict[str, Any]:
    """PMD ECG over BlueZ: every sample the strap sent stored (frames need the MTU raised);
    no notification taken for malformed."""
    chunks = [f for f in frames(db, "strap", "ecg") if isinstance(f, WaveformChunk)]
    samples = sum(c.samples.shape[0] for c in chunks)
    sent = truth["streams"]["ecg"]["sent"]
    ok = sent > 0 and samples == sent and link["decode_errors"] == 0
    return {"sent": sent, "stored": samples, **link_figures(link), "ok": ok}


def cuff_findings(db: Path, truth: dict[str, Any], link: dict[str, Any]) -> dict[str, Any]:
    """A cuff whose health services need an encrypted link with passkey entry: paired through
    the gateway's BlueZ agent, its measurements read (indications over the encrypted link)."""
    readings = [f for f in frames(db, "cuff", "blood_pressure") if isinstance(f, VitalReading)]
    live = [r for r in readings if not r.backfilled]
    sent = truth["streams"]["blood_pressure"]["sent"]
    ok = sent > 0 and len(live) == sent
    return {"sent": sent, "stored": len(live), **link_figures(link), "ok": ok}


def main() -> None:
    out, work = Path(sys.argv[1]), Path(sys.argv[2])
    try:
        result = asyncio.run(run(out, work))
        result["ok"] = all(v.get("ok", True) for v in result.values() if isinstance(v, dict))
        result["ok"] = result["ok"] and result["daemon_exit"] == 0
    except Exception as exc:  # noqa: BLE001 - the host side must hear of any failure
        result = {"ok": False, "error": repr(exc)}
    (out / "result.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
