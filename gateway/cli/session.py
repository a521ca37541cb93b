"""``wgw session start|stop``: a participant's recording session, told to the running daemon."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from gateway.cli.common import EX_USAGE, load
from gateway.cli.daemon_client import post

if TYPE_CHECKING:
    import argparse


def arguments(parser: argparse.ArgumentParser) -> None:
    """start|stop, ``--participant``, ``--label``."""
    parser.add_argument("action", choices=("start", "stop"))
    parser.add_argument("--participant", default=None, help="required to start")
    parser.add_argument("--label", default=None, help="e.g. night")


def run(args: argparse.Namespace) -> int:
    """One JSON line of the session stored; 2 when start has no participant."""
    if args.action == "start":
        if args.participant is None:
            print("error: session start needs --participant", file=sys.stderr)
            return EX_USAGE
        body = {"participant": args.participant, "label": args.label}
        return post(load(args).http, "/api/session/start", body)
    return post(load(args).http, "/api/session/stop", {"participant": args.participant})
