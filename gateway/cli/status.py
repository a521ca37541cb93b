"""``wgw status``: the running daemon's state as terminal tables (rich), or its JSON.

Devices (connection, battery, signal, and per stream the data age and samples against nominal),
the sinks' backlogs, uploads with the drain estimate, and the clock.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from gateway.cli import daemon_client
from gateway.cli.common import load

if TYPE_CHECKING:
    import argparse


def arguments(parser: argparse.ArgumentParser) -> None:
    """``--json``."""
    parser.add_argument("--json", action="store_true", help="the raw /api/status")


def _age(last_s: float | None, now: float) -> str:
    return "-" if last_s is None else f"{max(0.0, now - last_s):.1f} s"


def _rate(rate: dict[str, Any] | None) -> str:
    if rate is None or rate["rate_hz"] is None:
        return "-"
    nominal = f" ({rate['nominal_hz']:g})" if rate["nominal_hz"] is not None else ""
    return f"{rate['rate_hz']:.1f}{nominal}"


def _gaps(stream: dict[str, Any]) -> str:
    """Gaps this run, and how many of them the device's records filled (backfill)."""
    gaps = stream.get("gaps")
    if gaps is None:
        return "-"
    filled = stream.get("gaps_filled", 0)
    backfilled = stream.get("backfilled", 0)
    if not (filled or backfilled):
        return str(gaps)
    return f"{gaps} ({filled} filled, {backfilled} backfilled)"


def draw(status: dict[str, Any], console: Console) -> None:
    """Print the tables."""
    now = time.time()
    devices = Table(title="devices")
    for column in (
        "device",
        "connected",
        "battery",
        "RSSI",
        "stream",
        "data age",
        "per s (nominal)",
        "of nominal",
        "gaps",
    ):
        devices.add_column(column)
    rates = {(r["device_id"], r["stream"]): r for r in status.get("rates", [])}
    for d in status["devices"]:
        battery = f"{d['battery_pct']} %" if d["battery_pct"] is not None else "-"
        rssi = f"{d['rssi_dbm']} dBm" if d["rssi_dbm"] is not None else "-"
        head = [d["device_id"], "yes" if d["connected"] else "NO", battery, rssi]
        for i, s in enumerate(d["streams"] or [{"stream": "-", "last_time_s": None}]):
            expected = s.get("expected_units")
            nominal = f"{s['units'] / expected:.0%}" if expected else "-"
            cells = head if i == 0 else ["", "", "", ""]
            devices.add_row(
                *cells,
                s["stream"],
                _age(s["last_time_s"], now),
                _rate(rates.get((d["device_id"], s["stream"]))),
                nominal,
                _gaps(s),
            )
    console.print(devices)
    sinks = Table(title="outbox")
    for column in ("sink", "backlog", "oldest", "dead letters"):
        sinks.add_column(column)
    for name, b in status["outbox"]["backlog"].items():
        oldest = f"{b['oldest_age_s']:.0f} s" if b["oldest_age_s"] is not None else "-"
        sinks.add_row(name, str(b["pending"]), oldest, str(b["dead_letters"]))
    console.print(sinks)
    upload = status["health_upload"]
    console.print(
        f"upload: {upload['requests']} requests, {upload['records_uploaded']} records, "
        f"{upload['retries']} retries; backlog drains in about "
        f"{status['health_upload_drain_eta_s']:.0f} s"
        + (f"; last error: {upload['last_error']}" if upload["last_error"] else "")
        + (f"; [bold]waiting[/]: {upload['waiting_for']}" if upload.get("waiting_for") else "")
    )
    synced = {True: "synchronised", False: "NOT synchronised", None: "sync unknown"}
    console.print(
        f"clock: {synced[status['clock_synced']]}, {status['clock_jumps']} jumps"
        + "".join(
            f"; {device} disagrees by {offset:+.1f} s"
            for device, offset in status["clock_disagreements_s"].items()
        )
    )
    for alert in status.get("alerts", []):
        console.print(f"[bold red]ALERT[/] {alert['kind']} {alert['subject']}: {alert['detail']}")
    adapter = status.get("adapter")
    if adapter:
        console.print(
            f"adapter {adapter['adapter']}: {adapter['stalls']} stalls, "
            f"{adapter['recoveries']} recoveries, {adapter['recovery_failures']} failed"
            + (f"; last: {adapter['last_stall_reason']}" if adapter["last_stall_reason"] else "")
        )


def run(args: argparse.Namespace) -> int:
    """Print the tables (or JSON); 1 when the API is off or nothing answers."""
    api = daemon_client.endpoint_of(load(args).http)
    if api is None:
        return 1
    answered = asyncio.run(daemon_client.request(api, "GET", "/api/status"))
    if answered is None:
        return 1
    code, status = answered
    if code != 200:
        print(f"error: the daemon answered {code}: {status.get('error')}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(status))
    else:
        # piped (a log, a test), rich would assume 80 columns and fold the stream names
        draw(status, Console() if sys.stdout.isatty() else Console(width=140))
    return 0
