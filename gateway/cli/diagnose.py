"""``wgw diagnose``: a 12-meridian diagnosis with the device's latest vital signs.

A tongue analysis comes first when an image is given; the vital signs come from the outbox.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp

from buffers import inspect
from buffers.records import OutboxRecord
from gateway.cli.common import load
from gateway.clients.tcm import TcmClient
from gateway.clients.tcm_records import health_record
from gateway.codec import iso_utc, reading_of
from gateway.errors import SinkError
from gateway.retry import retrying

if TYPE_CHECKING:
    import argparse

    from gateway.config import Settings


def arguments(parser: argparse.ArgumentParser) -> None:
    """The symptoms, ``--tongue``, ``--device``, ``--json``."""
    parser.add_argument("--symptoms", required=True, help="comma-separated")
    parser.add_argument("--tongue", type=Path, default=None, help="a JPG or PNG of the tongue")
    parser.add_argument("--device", default=None, help="device id (default: the first)")
    parser.add_argument("--json", action="store_true", help="the raw answer")


def run(args: argparse.Namespace) -> int:
    """Print the diagnosis; 1 on any failure."""
    settings = load(args)
    return asyncio.run(
        _diagnose(settings, args.symptoms, args.tongue, args.device, as_json=args.json)
    )


def vital_signs(settings: Settings, device_id: str) -> dict[str, Any]:
    """The device's latest heart rate, pressure, SpO2 and temperature, as API.md's vital_signs."""
    latest = inspect.latest_vitals(settings.storage.path, device_id)
    signs: dict[str, Any] = {
        "heart_rate": None,
        "blood_pressure": None,
        "blood_oxygen": None,
        "temperature": None,
        "recorded_at": None,
    }
    newest = 0.0
    for stream in ("spo2", "spo2_spot", "blood_pressure", "temperature", "heart_rate"):
        if stream not in latest:
            continue
        t0, payload, encoding = latest[stream]
        row = OutboxRecord("vital", device_id, stream, 0, t0, payload, encoding=encoding)
        record = health_record(reading_of(row))
        for key in ("heart_rate", "blood_pressure", "blood_oxygen", "temperature"):
            if record[key] is not None:
                signs[key] = record[key]
        newest = max(newest, t0)
    signs["recorded_at"] = iso_utc(newest) if newest else None
    return signs


async def _diagnose(
    settings: Settings, symptoms: str, tongue: Path | None, device_id: str | None, *, as_json: bool
) -> int:
    """Print the diagnosis; 1 on any failure (with the server's code and request id)."""
    device_id = device_id or (settings.devices[0].id if settings.devices else None)
    if device_id is None:
        print("error: no --device given and none configured", file=sys.stderr)
        return 1
    try:
        signs = vital_signs(settings, device_id)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    token_cache = settings.storage.path.with_name("tcm_token.json")
    try:
        async with aiohttp.ClientSession() as session:
            client = TcmClient(session, settings.cloud.tcm, token_cache=token_cache)
            tongue_id = None
            if tongue is not None:
                analysis = await retrying(lambda: client.analyze_tongue(tongue))
                tongue_id = analysis["analysis_id"]
            items = [s.strip() for s in symptoms.split(",") if s.strip()]
            answer = await retrying(
                lambda: client.diagnose(signs, items, tongue_analysis_id=tongue_id)
            )
    except SinkError as exc:
        print(f"error: {exc} (code {exc.code}, request {exc.request_id})", file=sys.stderr)
        return 1
    if as_json:
        print(json.dumps(answer))
        return 0
    overall = answer.get("overall_assessment", {})
    print(f"device {device_id}: {json.dumps(signs)}")
    print(f"pattern: {overall.get('pattern')} (confidence {overall.get('confidence')})")
    print(f"{'meridian':<18}{'score':>7}  status")
    for m in answer.get("meridian_status", []):
        print(f"{m['meridian']:<18}{m['score']:>7}  {m['status']}")
    return 0
