"""``wgw demo``: the gateway against simulated devices and an in-process cloud emulator.

Prints one progress line a second and, at the end, a summary per device.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import TYPE_CHECKING

import aiomqtt
from pydantic import ValidationError

from gateway.cli.common import EX_CONFIG, load, on_signals
from gateway.config import BleConfig
from gateway.daemon import Daemon
from gateway.emulator.app import EmulatorConfig
from gateway.emulator.serve import running_emulator

if TYPE_CHECKING:
    import argparse

    from gateway.config import MqttConfig, Settings
    from gateway.daemon_statistics import DaemonStatistics


def arguments(parser: argparse.ArgumentParser) -> None:
    """``--duration``, ``--backend``."""
    parser.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    parser.add_argument(
        "--backend",
        choices=("sim", "bumble"),
        default=None,
        help="the simulated devices through our simulator's backend, or served on bumble's"
        " Bluetooth stack (the bumble extra); default: ble.backend in the config",
    )


def run(args: argparse.Namespace) -> int:
    """Run the demo until Ctrl-C or ``--duration``; the exit status."""
    settings = load(args)
    if args.backend is not None:
        try:
            ble = BleConfig.model_validate({**settings.ble.model_dump(), "backend": args.backend})
        except ValidationError as exc:
            print(f"--backend {args.backend}: {exc.errors()[0]['msg']}", file=sys.stderr)
            return EX_CONFIG
        settings = settings.model_copy(update={"ble": ble})
    return asyncio.run(_demo(settings, args.duration))


async def _demo(settings: Settings, duration_s: float | None) -> int:
    emulator = EmulatorConfig(plan=settings.cloud.tcm.plan)
    async with running_emulator(emulator, "127.0.0.1", 0) as emulator_url:
        settings = _pointed_at(settings, emulator_url)
        if settings.mqtt.enabled and not await _broker_reachable(settings.mqtt):
            print(
                f"MQTT broker {settings.mqtt.host}:{settings.mqtt.port} is not reachable:"
                " continuing with MQTT disabled",
                flush=True,
            )
            settings = settings.model_copy(
                update={"mqtt": settings.mqtt.model_copy(update={"enabled": False})}
            )
        daemon = Daemon(settings)
        on_signals(daemon.stop)
        print(f"cloud emulator on {emulator_url}; Ctrl-C stops the demo", flush=True)
        started = time.monotonic()
        async with asyncio.TaskGroup() as tg:
            runner = tg.create_task(daemon.run(), name="wgw.demo.daemon")
            await daemon.wait_ready()
            if daemon.status_url:
                print(f"status API on {daemon.status_url}/api/status", flush=True)
            progress = tg.create_task(_progress(daemon, started), name="wgw.demo.progress")
            if duration_s is not None:
                tg.create_task(_stop_after(daemon, duration_s), name="wgw.demo.timer")
            await asyncio.wait([runner])
            progress.cancel()
            final = await daemon.statistics()
        _print_summary(final, time.monotonic() - started)
    return 0


def _pointed_at(settings: Settings, emulator_url: str) -> Settings:
    tcm = settings.cloud.tcm.model_copy(update={"base_url": f"{emulator_url}/api/v1"})
    heartvoice = settings.cloud.heartvoice.model_copy(update={"base_url": emulator_url})
    cloud = settings.cloud.model_copy(update={"tcm": tcm, "heartvoice": heartvoice})
    return settings.model_copy(update={"cloud": cloud})


async def _broker_reachable(config: MqttConfig) -> bool:
    client = aiomqtt.Client(config.host, config.port, timeout=2.0)
    try:
        async with asyncio.timeout(3.0), client:
            return True
    except (aiomqtt.MqttError, TimeoutError, OSError):
        return False


async def _stop_after(daemon: Daemon, duration_s: float) -> None:
    await asyncio.sleep(duration_s)
    daemon.stop()


async def _progress(daemon: Daemon, started: float) -> None:
    while True:
        await asyncio.sleep(1.0)
        s = await daemon.statistics()
        readings = sum(d.readings for d in s.devices)
        samples = sum(d.samples for d in s.devices)
        published = sum(s.mqtt.published_by_device.values()) if s.mqtt else 0
        uploaded = sum(s.health_upload.uploaded_by_device.values())
        mqtt_state = (
            "" if s.mqtt is None else (" (MQTT up)" if s.mqtt.connected else " (MQTT down)")
        )
        converted = f" | converted {s.conversion.converted} windows" if s.conversion else ""
        print(
            f"[{time.monotonic() - started:5.0f} s] received {readings} readings, {samples} samples"
            f" | stored {s.outbox.committed} rows | uploaded {uploaded} readings"
            f" in {s.health_upload.records_uploaded} records | published {published}{mqtt_state}"
            f"{converted}",
            flush=True,
        )


def _print_summary(s: DaemonStatistics, elapsed_s: float) -> None:
    print(f"\nsummary after {elapsed_s:.0f} s:")
    print(
        f"{'device':<16}{'readings':>10}{'samples':>10}{'backfilled':>11}{'stored':>10}"
        f"{'uploaded':>10}{'published':>11}{'errors':>8}"
    )
    for d in s.devices:
        published = s.mqtt.published_by_device.get(d.device_id, 0) if s.mqtt else 0
        errors = d.decode_errors + d.dropped_queue_full
        stored = s.stored_by_device.get(d.device_id, 0)
        uploaded = s.health_upload.uploaded_by_device.get(d.device_id, 0)
        backfilled = sum(st.backfilled for st in d.streams)
        print(
            f"{d.device_id:<16}{d.readings:>10}{d.samples:>10}{backfilled:>11}{stored:>10}"
            f"{uploaded:>10}{published:>11}{errors:>8}"
        )
    backlog = ", ".join(f"{sink} {b.pending}" for sink, b in s.outbox.backlog.items())
    print(f"outbox: {s.outbox.total_rows} rows in total; still to deliver: {backlog}")
    print(
        f"upload: {s.health_upload.requests} requests, {s.health_upload.retries} retries,"
        f" {s.health_upload.dead_lettered} dead-lettered"
    )
    if s.conversion is not None:
        c = s.conversion
        print(
            f"conversion: {c.windows} windows, {c.converted} converted, {c.below_gate} below the"
            f" quality gate, {c.not_due} not due, {c.failed} refused"
            + (
                " (`wgw plot --device ID --out ecg.png` draws the latest 12 leads)"
                if c.converted
                else ""
            )
        )
