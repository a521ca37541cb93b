"""What every command shares: ``--config`` (declared once), loading settings, exit codes, times."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final

from gateway.config import load_settings
from gateway.errors import ConfigError
from gateway.logs import configure_logging

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from gateway.config import Settings

EX_USAGE: Final = 2  # argparse's own code for a bad argument
EX_IOERR: Final = 74  # sysexits.h: the store cannot be opened
EX_CONFIG: Final = 78  # sysexits.h; the systemd unit sets RestartPreventExitStatus=78


SYSTEM_CONFIG: Final = Path("/etc/wearable-gateway/config.yaml")  # where the package puts it
LOCAL_CONFIG: Final = Path("config.yaml")


def config_option() -> argparse.ArgumentParser:
    """The parent parser of every command that reads config."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--config",
        type=Path,
        default=None,
        help=f"config file (default: $WGW_CONFIG, else {SYSTEM_CONFIG}, else ./{LOCAL_CONFIG})",
    )
    return parent


def config_path(
    given: Path | None,
    environ: Mapping[str, str] = os.environ,
    system: Path = SYSTEM_CONFIG,
) -> Path:
    """The config file: ``--config``, else ``$WGW_CONFIG``, else ``system`` or ``./config.yaml``.

    The first two are taken as given (an error then names them); of the last two, the first
    that exists.

    Raises:
        ConfigError: Neither was given and neither exists; the message names every place looked.
    """
    if given is not None:
        return given
    if named := environ.get("WGW_CONFIG"):
        return Path(named)
    for candidate in (system, LOCAL_CONFIG):
        if candidate.exists():
            return candidate
    looked = f"--config (not given), $WGW_CONFIG (not set), {system}, {LOCAL_CONFIG.resolve()}"
    raise ConfigError([f"no config file: looked at {looked}"])


def load(args: argparse.Namespace) -> Settings:
    """The settings of the config file (``config_path``), with logging set up as they say.

    Raises:
        ConfigError: None found, unreadable or invalid; the entry point prints each problem and
            exits 78.
    """
    settings = load_settings(config_path(args.config))
    configure_logging(args.log_level, settings.logging.format)
    return settings


def moment(text: str) -> float:
    """An argparse type: epoch seconds, or ISO 8601 (``Z`` or an offset; naive is UTC).

    Raises:
        ArgumentTypeError: Neither (argparse says so and exits 2).
    """
    try:
        return float(text)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither ISO 8601 nor epoch s") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def on_signals(callback: Callable[[], None]) -> None:
    """Call ``callback`` on SIGTERM and SIGINT (from inside the running loop)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, callback)
