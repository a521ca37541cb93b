"""Inside the VM: the simulated wearables served on bumble, reached by the kernel through a
bumble controller on ``/dev/vhci`` (so BlueZ sees an adapter, hci0, with them in range).

``python -m tests.bluez.peripherals CONFIG TRUTH``: serves ``ble.sim.devices`` of the YAML
config until SIGTERM (SIGUSR1 before it stops the devices measuring), then writes what each
device sent (the simulator's ground truth) to TRUTH as JSON.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

import yaml
from bumble.controller import Controller
from bumble.transport import open_transport

from drivers.bumble.serve import served
from gateway.config import Settings
from gateway.simulation import build_world, ground_truth

ADAPTER_ADDRESS = "F1:F1:F1:F1:F1:F1"  # hci0's public address


async def serve(settings: Settings) -> list[dict[str, object]]:
    """Until SIGTERM; then what each device sent."""
    world = build_world(settings.ble.sim)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, world.pause)  # the devices stop measuring
    async with world, served(world) as (radio, _peripherals):
        transport = await open_transport("vhci")
        async with transport:
            Controller(
                "hci0",
                host_source=transport.source,
                host_sink=transport.sink,
                link=radio.link,
                public_address=ADAPTER_ADDRESS,
            )
            print("peripherals: serving", flush=True)
            await stop.wait()
        world.pause()
        return ground_truth(world)


if __name__ == "__main__":
    config, truth = Path(sys.argv[1]), Path(sys.argv[2])
    sent = asyncio.run(serve(Settings.model_validate(yaml.safe_load(config.read_text()))))
    truth.write_text(json.dumps(sent, indent=1))
