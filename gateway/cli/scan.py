"""``wgw scan``: the devices in range, their profiles, and whether config selects them."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

from drivers.ble.discovery import AllowList, scan
from gateway.cli.common import load
from gateway.simulation import backends_for, build_world

if TYPE_CHECKING:
    import argparse

    from gateway.config import Settings


def arguments(parser: argparse.ArgumentParser) -> None:
    """``--duration``, ``--json``."""
    parser.add_argument("--duration", type=float, default=5.0, help="seconds to listen")
    parser.add_argument("--json", action="store_true", help="one JSON object per device")


def run(args: argparse.Namespace) -> int:
    """Scan; 1 when Bluetooth is not available."""
    return asyncio.run(_print_scan(load(args), args.duration, as_json=args.json))


def allow_list(settings: Settings) -> AllowList:
    """The configured devices and the discovery allow-lists."""
    d = settings.ble.discovery
    return AllowList(
        configured=frozenset(device.address.upper() for device in settings.devices),
        names=d.names,
        addresses=frozenset(a.upper() for a in d.addresses),
        service_uuids=frozenset(u.lower() for u in d.service_uuids),
    )


async def _print_scan(settings: Settings, duration_s: float, *, as_json: bool) -> int:
    """Scan with the configured backend and print a table (or JSON lines)."""
    async with AsyncExitStack() as stack:
        ble = settings.ble
        world = build_world(ble.sim) if ble.backend in ("sim", "bumble") else None
        backends = await backends_for(ble, world, stack)
        try:
            sightings = await scan(backends, duration_s, allow_list(settings))
        except OSError as exc:  # bleak's BlueZ backend without D-Bus: FileNotFoundError
            print(f"error: Bluetooth is not available: {exc}")
            return 1
    if as_json:
        for s in sightings:
            print(json.dumps(dataclasses.asdict(s)))
        return 0
    print(f"{'address':<19}{'name':<24}{'rssi':>6}  {'selected':<12}profiles")
    for s in sightings:
        print(
            f"{s.address:<19}{(s.name or '-'):<24}{s.rssi_dbm:>6}  {(s.selected or '-'):<12}"
            f"{', '.join(s.profiles) or '-'}"
        )
    if not sightings:
        print("(nothing in range)")
    return 0
