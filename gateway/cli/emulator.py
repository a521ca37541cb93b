"""``wgw emulator``: serve both cloud APIs' emulator on a real port until a signal.

Every option has a ``WGW_EMULATOR_*`` variable (``--plan`` and ``WGW_EMULATOR_PLAN``); a flag
given wins over the variable, the variable over the default.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from gateway.cli.common import on_signals
from gateway.emulator.app import EmulatorConfig
from gateway.emulator.serve import serve_forever
from gateway.errors import ConfigError

if TYPE_CHECKING:
    from pydantic_core import ErrorDetails


class EmulatorSettings(BaseSettings):
    """Where the emulator listens and what it accepts."""

    model_config = SettingsConfigDict(env_prefix="WGW_EMULATOR_", extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    plan: Literal["free", "basic", "pro", "enterprise"] = "free"
    email: str = "demo@example.com"
    password: str = "demo-password"  # noqa: S105 - the emulator's published demo account
    tcm_api_key: str = "tcm-demo-key"
    heartvoice_api_key: str = "heartvoice-demo-key"
    token_ttl_s: float = Field(default=86_400.0, gt=0)
    faults: dict[str, Any] = Field(default_factory=dict)  # as POST /_emulator/faults takes


def arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per setting; each defaults to its variable, then to the setting's default."""
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    parser.add_argument("--plan", choices=("free", "basic", "pro", "enterprise"))
    parser.add_argument("--email")
    parser.add_argument("--password")
    parser.add_argument("--tcm-api-key")
    parser.add_argument("--heartvoice-api-key")
    parser.add_argument("--token-ttl-s", type=float)
    parser.add_argument(
        "--faults",
        type=_json_object,
        help='initial faults as JSON, e.g. \'{"latency_s": 0.2, "error_rates": {"503": 0.1}}\'',
    )


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("not a JSON object")
    return value


def _describe(error: ErrorDetails, flags: dict[str, Any]) -> str:
    """The flag, or else the variable, that gave the refused value."""
    name = str(error["loc"][0]) if error["loc"] else ""
    source = f"--{name.replace('_', '-')}" if name in flags else f"WGW_EMULATOR_{name.upper()}"
    return f"{source}: {error['msg']}"


def settings_of(args: argparse.Namespace) -> EmulatorSettings:
    """The flags given, over the variables set, over the defaults.

    Raises:
        ConfigError: A flag or variable is refused, each named (the entry point exits 78).
    """
    given = {name: value for name, value in vars(args).items() if value is not None}
    flags = {name: given[name] for name in EmulatorSettings.model_fields if name in given}
    try:
        return EmulatorSettings(**flags)
    except ValidationError as exc:
        raise ConfigError([_describe(error, flags) for error in exc.errors()]) from None


def run(args: argparse.Namespace) -> int:
    """Serve until SIGTERM or SIGINT."""
    settings = settings_of(args)
    config = EmulatorConfig(
        email=settings.email,
        password=settings.password,
        tcm_api_key=settings.tcm_api_key,
        heartvoice_api_key=settings.heartvoice_api_key,
        plan=settings.plan,
        token_ttl_s=settings.token_ttl_s,
        faults=settings.faults,
    )
    asyncio.run(serve_forever(config, settings.host, settings.port, on_signals))
    return 0
