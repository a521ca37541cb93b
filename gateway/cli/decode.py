"""``wgw decode CHARACTERISTIC HEX``: one payload through the gateway's decoders, as JSON.

``-`` reads one hex payload per stdin line and answers each with a JSON line (an error too).
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

from drivers.catalog import decode_json, lookup
from drivers.errors import DecodeError
from gateway.cli.common import EX_USAGE

if TYPE_CHECKING:
    import argparse


def arguments(parser: argparse.ArgumentParser) -> None:
    """The characteristic, the payload, the PMD frame's shape when it is compressed."""
    parser.add_argument("characteristic", help="name, 16-bit UUID (2a37) or full UUID")
    parser.add_argument("payload", help="hex bytes, or - for one hex payload per stdin line")
    parser.add_argument("--channels", type=int, default=None, help="PMD compressed frames")
    parser.add_argument("--resolution", type=int, default=None, help="PMD compressed frames (bits)")
    parser.add_argument("--path", default=None, help="Movesense data: its resource, /Meas/ECG/250")


def run(args: argparse.Namespace) -> int:
    """0, or 1 for one payload that does not decode; 2 for an unknown characteristic."""
    characteristic = lookup(args.characteristic)
    if characteristic is None:
        print(f"error: unknown characteristic {args.characteristic!r}", file=sys.stderr)
        return EX_USAGE

    def one(text: str) -> dict[str, object]:
        try:
            data = bytes.fromhex(text.strip().replace(":", "").replace(" ", ""))
        except ValueError:
            raise DecodeError(characteristic.name, "not hex") from None
        return decode_json(
            characteristic,
            data,
            channels=args.channels,
            resolution_bits=args.resolution,
            path=args.path,
        )

    if args.payload != "-":
        try:
            print(json.dumps(one(args.payload)))
        except DecodeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        return 0
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            print(json.dumps(one(line)), flush=True)
        except DecodeError as exc:
            print(json.dumps({"error": str(exc)}), flush=True)
    return 0
