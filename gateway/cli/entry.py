"""``wgw``: find the command, import its module alone, parse its arguments, run it.

Each command module has ``arguments(parser)`` and ``run(args) -> exit status``; only the chosen
one is imported, so ``wgw --help`` and a config error stay fast and ``wgw status`` never loads
the daemon.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol, cast

from gateway.cli.common import EX_CONFIG, config_option
from gateway.errors import ConfigError
from gateway.logs import configure_logging
from gateway.version import gateway_version

if TYPE_CHECKING:
    from collections.abc import Sequence


class CommandModule(Protocol):
    """What ``gateway.cli.<command>`` provides."""

    def arguments(self, parser: argparse.ArgumentParser) -> None:
        """Add the command's own arguments."""

    def run(self, args: argparse.Namespace) -> int:
        """Do the job; the exit status."""


@dataclass(frozen=True, slots=True)
class Command:
    """One sub-command: its name (and module's), its help line, whether it reads config."""

    name: str
    help: str
    reads_config: bool = True


COMMANDS: Final = (
    Command("run", "run the gateway daemon"),
    Command("demo", "run the gateway against simulated devices and the local emulator"),
    Command("scan", "list the devices in range and whether config selects them"),
    Command("queue", "the outbox: backlog per sink, dead letters, retry"),
    Command("status", "the running daemon's state as tables"),
    Command("sync", "upload what is waiting now (or --full: the retained history), with progress"),
    Command("session", "start or stop a participant's recording session"),
    Command("mark", "an event marker now, e.g. 'exercise start'"),
    Command("assign", "a device is worn by a participant from now on"),
    Command(
        "decode",
        "decode one characteristic payload (hex) to JSON; '-' reads lines from stdin",
        reads_config=False,
    ),
    Command("process", "apply the gateway's signal chain to a recording (CSV) offline"),
    Command("ecg", "PPG recording -> ECG (and 12 leads) via HeartVoice"),
    Command("export", "stored waveforms, vitals, markers: csv|wfdb|edf"),
    Command("plot", "draw a stored 12-lead result (PNG, clinical layout)"),
    Command("diffusets", "12-lead ECG images for a clinical text"),
    Command("diagnose", "12-meridian diagnosis with the latest vitals"),
    Command("emulator", "serve the cloud APIs' emulator", reads_config=False),
)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``wgw`` console script."""
    words = list(sys.argv[1:] if argv is None else argv)
    chosen = _command_in(words)
    parser, module = _parser(chosen)
    args = parser.parse_args(words)
    configure_logging(args.log_level)
    assert module is not None  # parse_args exits unless a known command was given
    try:
        return module.run(args)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"config error: {problem}", file=sys.stderr)
        return EX_CONFIG


def _command_in(words: Sequence[str]) -> str | None:
    """The first word that is not a top-level option or its value."""
    skip = False
    for word in words:
        if skip:
            skip = False
        elif word == "--log-level":
            skip = True
        elif not word.startswith("-"):
            return word
    return None


def _parser(chosen: str | None) -> tuple[argparse.ArgumentParser, CommandModule | None]:
    parser = argparse.ArgumentParser(prog="wgw", description="wearable-gateway", allow_abbrev=False)
    parser.add_argument("--log-level", default=os.environ.get("WGW_LOG_LEVEL", "INFO"))
    parser.add_argument("--version", action="version", version=f"wgw {gateway_version()}")
    commands = parser.add_subparsers(required=True, metavar="COMMAND", dest="command")
    config = config_option()
    module: CommandModule | None = None
    for command in COMMANDS:
        sub = commands.add_parser(
            command.name, help=command.help, parents=[config] if command.reads_config else []
        )
        if command.name == chosen:
            module = cast("CommandModule", importlib.import_module(f"gateway.cli.{command.name}"))
            module.arguments(sub)
    return parser, module
