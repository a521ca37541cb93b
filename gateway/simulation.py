"""Builds the simulated radio environment that ``ble.backend: sim`` runs against."""

from __future__ import annotations

from typing import TYPE_CHECKING

from drivers.sim.watch import SimWatch, WatchSpec
from drivers.sim.world import SimWorld

if TYPE_CHECKING:
    from gateway.config import SimConfig


def build_world(config: SimConfig) -> SimWorld:
    """One simulated peripheral per ``ble.sim.devices`` entry."""
    watches = [
        SimWatch(
            WatchSpec(
                address=d.address,
                name=d.name,
                seed=d.seed,
                heart_rate_interval_s=d.heart_rate_interval_ms / 1000.0,
                ppg_rate_hz=d.ppg_rate_hz,
                ppg_samples_per_packet=d.ppg_samples_per_packet,
                malformed_every=d.malformed_every,
            )
        )
        for d in config.devices
    ]
    return SimWorld(watches, advert_interval_s=config.advert_interval_ms / 1000.0)
