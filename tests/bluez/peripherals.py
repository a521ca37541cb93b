"""Inside the VM: the simulated wearables served on bumble, reached by the kernel through a
bumble controller on ``/dev/vhci`` (so BlueZ sees an adapter, hci0, with them in range).

``python -m tests.bluez.peripherals CONFIG TRUTH``: serves ``ble.sim.devices`` of the YAML
config until SIGTERM (SIGUSR1 before it stops the devices measuring), then writes what each
device sent (the simulator's ground truth) to TRUTH as JSON.
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import sys
from pathlib import Path
from typing import Any

import yaml
from bumble.transport import open_transport

from drivers.bumble.radio import CancellableController
from drivers.bumble.serve import served
from gateway.config import Settings
from gateway.simulation import build_world, ground_truth

ADAPTER_ADDRESS = "F1:F1:F1:F1:F1:F1"  # hci0's public address
_LE_META, _ADV_REPORT, _EXT_ADV_REPORT = 0x3E, 0x02, 0x0D


class JitteredRssi:
    """The kernel's side of the vhci transport, with each advertising report's RSSI varied as
    on air (bumble's controller says -50 dBm always, and BlueZ reports a device it knows again
    only when something of it changes)."""

    def __init__(self, sink: Any) -> None:
        self._sink = sink
        self._rng = random.Random(7)

    def on_packet(self, packet: bytes) -> None:
        data = bytearray(packet)  # H4: 0x04 (event), code, length, parameters
        if len(data) > 4 and data[0] == 0x04 and data[1] == _LE_META and data[4] == 1:
            rssi = self._rng.randint(-75, -40) & 0xFF
            if data[3] == _ADV_REPORT:  # one report: its RSSI is the last byte
                data[-1] = rssi
            elif data[3] == _EXT_ADV_REPORT and len(data) > 18:
                data[18] = rssi
        self._sink.on_packet(bytes(data))


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
            # bumble's own controller leaves a cancelled LE Create Connection pending, and the
            # kernel cancels one that takes too long
            CancellableController(
                "hci0",
                host_source=transport.source,
                host_sink=JitteredRssi(transport.sink),
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
