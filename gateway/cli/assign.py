"""``wgw assign``: from now (or ``--from``) a device is worn by a participant, or by nobody."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.cli.common import load, moment
from gateway.cli.daemon_client import post

if TYPE_CHECKING:
    import argparse


def arguments(parser: argparse.ArgumentParser) -> None:
    """``--device``, ``--participant``, ``--from``."""
    parser.add_argument("--device", required=True)
    parser.add_argument("--participant", default=None, help="omit: nobody wears it")
    parser.add_argument("--from", dest="from_time", type=moment, help="ISO 8601 or epoch s")


def run(args: argparse.Namespace) -> int:
    """One JSON line of the assignment stored."""
    body: dict[str, object] = {"device": args.device, "participant": args.participant}
    if args.from_time is not None:
        body["from"] = args.from_time
    return post(load(args).http, "/api/assign", body)
