"""Builds the simulated wearables that ``ble.backend: sim`` and ``ble.backend: bumble`` run against.

``sim``: our own in-process stand-in for bleak's backend. ``bumble``: the same device models
served over bumble's host stack on a virtual radio, reached through bleak's API.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING

from drivers.ble.backends import PLATFORM, bumble, simulated
from drivers.sim.devices import ScheduledFault, SimDevice, preset
from drivers.sim.world import SimWorld

if TYPE_CHECKING:
    from collections.abc import Mapping
    from contextlib import AsyncExitStack
    from pathlib import Path

    from drivers.ble.backends import BleBackends
    from drivers.sim.devices import SimDeviceSpec
    from gateway.config import BleConfig, SimConfig, SimDeviceConfig


log = logging.getLogger(__name__)


async def backends_for(
    ble: BleConfig,
    world: SimWorld | None,
    stack: AsyncExitStack,
    bond_file: Path | None = None,
    passkeys: Mapping[str, int] | None = None,
) -> BleBackends:
    """The bleak backends ``ble.backend`` names; a simulated world runs while ``stack`` does.

    ``bond_file``: where bumble's central keeps its bonds (BlueZ keeps its own). ``passkeys``
    (address -> the passkey the device shows): on BlueZ, entered by an agent of the gateway's
    registered while ``stack`` runs (the simulated stacks take them from the device spec).
    """
    if world is None:
        if passkeys:
            await _passkey_agent(stack, passkeys)
        return PLATFORM
    await stack.enter_async_context(world)
    if ble.backend != "bumble":
        return simulated(world)
    from drivers.bumble.serve import served  # noqa: PLC0415 - the optional bumble extra

    interval_ms = ble.sim.connection_interval_ms
    interval_s = interval_ms / 1000.0 if interval_ms is not None else None
    radio, _ = await stack.enter_async_context(served(world, bond_file, interval_s))
    return bumble(radio)


def build_world(config: SimConfig) -> SimWorld:
    """One simulated device per ``ble.sim.devices`` entry."""
    return SimWorld(
        [SimDevice(_spec(d)) for d in config.devices],
        advert_interval_s=config.advert_interval_ms / 1000.0,
        speed=config.speed,
    )


async def _passkey_agent(stack: AsyncExitStack, passkeys: Mapping[str, int]) -> None:
    """BlueZ's agent for passkey entry; without BlueZ on D-Bus, said once (pairing will fail)."""
    from dbus_fast import DBusError  # noqa: PLC0415 - Linux only, with BlueZ

    from drivers.ble.bluez_agent import passkey_agent  # noqa: PLC0415

    try:
        await stack.enter_async_context(passkey_agent(passkeys))
    except (DBusError, OSError) as exc:
        log.error(
            "BlueZ: the passkey agent could not be registered (%s); devices with pairing:"
            " passkey will not pair",
            exc,
        )


def ground_truth(world: SimWorld) -> list[dict[str, object]]:
    """What each simulated device measured and what became of it (``/api/sim``)."""
    out: list[dict[str, object]] = []
    for p in world.peripherals.values():
        counters = getattr(p, "counters", {})
        out.append(
            {
                "address": p.address,
                "connects": p.link.connects,
                "link_drops": p.link.link_drops,
                "refused": p.link.refused,
                "notifications_sent": p.link.notifications_sent,
                "faults_played": dict(getattr(p, "faults_played", {})),
                "streams": {
                    name: {
                        "produced": c.produced,
                        "sent": c.sent,
                        "lost_link_down": c.lost_link_down,
                        "lost_radio": c.lost_radio,
                        "malformed": c.malformed,
                        "stalled": c.stalled,
                        "bytes_sent": c.bytes_sent,
                    }
                    for name, c in counters.items()
                },
            }
        )
    return out


def _spec(d: SimDeviceConfig) -> SimDeviceSpec:
    spec = preset(
        d.model,
        d.address,
        d.name or f"Sim{d.model.capitalize()}-{d.address[-2:]}",
        seed=d.seed,
        malformed_rate=d.malformed_rate,
        battery_pct=d.battery_pct,
        clock_offset_s=d.clock_offset_s,
        start_delay_s=d.start_delay_s,
        faults=tuple(ScheduledFault(**f.model_dump()) for f in d.faults),
        security=d.security,
        passkey=d.passkey,
    )
    if d.heart_rate_interval_ms is not None:
        spec = replace(spec, heart_rate_interval_s=d.heart_rate_interval_ms / 1000.0)
    if d.blood_pressure_interval_s is not None:
        spec = replace(spec, blood_pressure_interval_s=d.blood_pressure_interval_s)
    if d.spot_check_interval_s is not None:
        spec = replace(spec, spot_check_interval_s=d.spot_check_interval_s)
    if d.pmd_rate_hz is not None and spec.pmd is not None:
        spec = replace(spec, pmd=replace(spec.pmd, sample_rate_hz=d.pmd_rate_hz))
    return spec
