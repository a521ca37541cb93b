"""The installed package's version (``wgw --version``, Home Assistant's origin block)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def gateway_version() -> str:
    """The version pip installed, or ``0+unknown`` when run from a tree never installed."""
    try:
        return version("wearable-gateway")
    except PackageNotFoundError:
        return "0+unknown"
