"""When a phone hub may upload (``sync.upload_when``): its power and network, read from Linux.

A Linux phone (postmarketOS, Mobian) reports its battery and chargers under
``/sys/class/power_supply`` and its network interfaces under ``/sys/class/net``, as a Pi does;
NetworkManager, where it runs, says whether the connection is metered. Studies upload only on
Wi-Fi, only while charging, or above a battery level, as RADAR-base and AWARE let them.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from pathlib import Path

    from gateway.config import UploadWhenConfig

log = logging.getLogger(__name__)

InterfaceKind = Literal["wifi", "ethernet", "cellular"]
_ARPHRD_ETHER: Final = 1
_ARPHRD_RAWIP: Final = 519  # what most modems' network interfaces are
_CELLULAR_NAMES: Final = ("wwan", "rmnet", "ccmni")
# NetworkManager's NMMetered: 1 yes, 3 guessed yes (e.g. a phone's hotspot)
_NM_METERED: Final = frozenset({1, 3})


@dataclass(frozen=True, slots=True)
class Power:
    """The host's power: on a charger (or without a battery at all), and the battery's level."""

    charging: bool
    battery_pct: float | None  # None: no battery (a Pi on its power supply)


def read_power(sys_root: Path) -> Power:
    """Batteries and chargers under ``<sys_root>/class/power_supply``."""
    charging = False
    levels: list[float] = []
    supplies = sys_root / "class" / "power_supply"
    for supply in sorted(supplies.iterdir()) if supplies.is_dir() else ():
        kind = _read(supply / "type")
        if kind == "Battery":
            with contextlib.suppress(ValueError):
                levels.append(float(_read(supply / "capacity") or ""))
            charging |= _read(supply / "status") in ("Charging", "Full")
        elif kind in ("Mains", "USB", "USB_C", "USB_PD", "Wireless"):
            charging |= _read(supply / "online") == "1"
    if not levels:
        return Power(charging=True, battery_pct=None)  # no battery: on mains
    return Power(charging=charging, battery_pct=min(levels))


def connected_interfaces(sys_root: Path) -> dict[str, InterfaceKind]:
    """Physical network interfaces that are up, by kind (virtual ones and loopback left out)."""
    found: dict[str, InterfaceKind] = {}
    interfaces = sys_root / "class" / "net"
    for interface in sorted(interfaces.iterdir()) if interfaces.is_dir() else ():
        if _read(interface / "operstate") != "up" or not (interface / "device").exists():
            continue
        uevent = _read(interface / "uevent") or ""
        arp_type = _read(interface / "type")
        if (
            "DEVTYPE=wwan" in uevent
            or arp_type == str(_ARPHRD_RAWIP)
            or interface.name.startswith(_CELLULAR_NAMES)
        ):
            found[interface.name] = "cellular"
        elif (interface / "wireless").exists() or (interface / "phy80211").exists():
            found[interface.name] = "wifi"
        elif arp_type == str(_ARPHRD_ETHER):
            found[interface.name] = "ethernet"
    return found


async def networkmanager_metered() -> bool | None:
    """Whether NetworkManager calls the primary connection metered; None where it is not running."""
    try:
        from dbus_fast import BusType  # noqa: PLC0415 - Linux only, with bleak
        from dbus_fast.aio import MessageBus  # noqa: PLC0415
    except ImportError:
        return None
    try:
        bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
    except (OSError, ValueError) as exc:
        log.debug("no system bus: %s", exc)
        return None
    try:
        path = "/org/freedesktop/NetworkManager"
        introspection = await bus.introspect("org.freedesktop.NetworkManager", path)
        proxy = bus.get_proxy_object("org.freedesktop.NetworkManager", path, introspection)
        properties = proxy.get_interface("org.freedesktop.DBus.Properties")
        metered = await properties.call_get(  # type: ignore[attr-defined]
            "org.freedesktop.NetworkManager", "Metered"
        )
        return int(metered.value) in _NM_METERED
    except Exception as exc:  # noqa: BLE001 - no NetworkManager: the flag is unknown, no more
        log.debug("NetworkManager's metered flag unknown: %s", exc)
        return None
    finally:
        bus.disconnect()


class UploadConditions:
    """Whether uploads may run now, and if not, why (one line a person can act on)."""

    def __init__(
        self,
        config: UploadWhenConfig,
        metered: Callable[[], Awaitable[bool | None]] = networkmanager_metered,
    ) -> None:
        self._config = config
        self._metered = metered

    @property
    def constrained(self) -> bool:
        """Whether the config asks for anything at all (else nothing is ever read)."""
        c = self._config
        return c.network != "any" or c.charging or c.min_battery_pct > 0

    async def blocked(self) -> str | None:
        """Why uploads must wait now; None: they may go."""
        if not self.constrained:
            return None
        return self._power() or await self._network()

    def _power(self) -> str | None:
        c = self._config
        power = read_power(c.sys_root)
        if c.charging and not power.charging:
            return "waiting for a charger (sync.upload_when.charging)"
        if power.battery_pct is not None and power.battery_pct < c.min_battery_pct:
            return (
                f"battery at {power.battery_pct:.0f}%, below {c.min_battery_pct:.0f}%"
                " (sync.upload_when.min_battery_pct)"
            )
        return None

    async def _network(self) -> str | None:
        network = self._config.network
        if network == "any":
            return None
        kinds = set(connected_interfaces(self._config.sys_root).values())
        if network == "wifi":
            return None if "wifi" in kinds else "waiting for Wi-Fi (sync.upload_when.network)"
        if not kinds & {"wifi", "ethernet"}:
            return "waiting for Wi-Fi or Ethernet (sync.upload_when.network: unmetered)"
        if await self._metered():
            return "the connection is metered (NetworkManager; sync.upload_when.network)"
        return None


def _read(path: Path) -> str | None:
    """A sysfs attribute, stripped; None if absent or unreadable."""
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None
