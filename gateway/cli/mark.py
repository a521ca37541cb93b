"""``wgw mark TEXT``: an event marker now, stored by the running daemon with the session."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.cli.common import load
from gateway.cli.daemon_client import post

if TYPE_CHECKING:
    import argparse


def arguments(parser: argparse.ArgumentParser) -> None:
    """The text, ``--participant``."""
    parser.add_argument("text")
    parser.add_argument("--participant", default=None, help="default: the only open session's")


def run(args: argparse.Namespace) -> int:
    """One JSON line of the marker stored."""
    return post(load(args).http, "/api/mark", {"text": args.text, "participant": args.participant})
