"""The ``wgw`` command line: one sub-command per job; heavy imports happen inside each."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import signal
import sqlite3
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Final

from buffers.errors import StorageError
from gateway.config import Settings, load_settings
from gateway.errors import ConfigError
from gateway.logs import configure_logging
from gateway.shutdown_guard import EXIT_ABANDONED, ShutdownGuard

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from gateway.daemon import Daemon

EX_CONFIG: Final = 78  # sysexits.h; the systemd unit sets RestartPreventExitStatus=78
EX_IOERR: Final = 74  # sysexits.h: the store cannot be opened


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``wgw`` console script."""
    parser = _parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    return handler(args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wgw", description="wearable-gateway")
    parser.add_argument("--log-level", default=os.environ.get("WGW_LOG_LEVEL", "INFO"))
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run the gateway daemon")
    run.add_argument("--config", type=Path, default=Path("config.yaml"))
    run.set_defaults(handler=_run)

    demo = commands.add_parser(
        "demo", help="run the gateway against simulated devices and the local emulator"
    )
    demo.add_argument("--config", type=Path, default=Path("config.yaml"))
    demo.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    demo.set_defaults(handler=_demo)

    scan = commands.add_parser(
        "scan", help="list the devices in range and whether config selects them"
    )
    scan.add_argument("--config", type=Path, default=Path("config.yaml"))
    scan.add_argument("--duration", type=float, default=5.0, help="seconds to listen")
    scan.add_argument("--json", action="store_true", help="one JSON object per device")
    scan.set_defaults(handler=_scan)

    queue = commands.add_parser("queue", help="the outbox: backlog per sink, dead letters, retry")
    queue.add_argument(
        "action", nargs="?", choices=("stats", "dead-letters", "retry", "sessions"), default="stats"
    )
    queue.add_argument("--participant", default=None, help="stats and sessions of one participant")
    queue.add_argument("--session", type=int, default=None, help="stats of one session")
    queue.add_argument("--config", type=Path, default=Path("config.yaml"))
    queue.add_argument("--sink", default=None, help="only this sink")
    queue.add_argument("--json", action="store_true")
    queue.set_defaults(handler=_queue)

    status = commands.add_parser("status", help="the running daemon's state as tables")
    status.add_argument("--config", type=Path, default=Path("config.yaml"))
    status.add_argument("--json", action="store_true", help="the raw /api/status")
    status.set_defaults(handler=_status)

    sync = commands.add_parser(
        "sync", help="upload what is waiting now (or --full: the retained history), with progress"
    )
    sync.add_argument("--full", action="store_true", help="resend every retained reading")
    sync.add_argument("--config", type=Path, default=Path("config.yaml"))
    sync.add_argument("--timeout", type=float, default=None, help="stop following after S seconds")
    sync.set_defaults(handler=_sync)

    _add_study_commands(commands)

    decode = commands.add_parser(
        "decode", help="decode one characteristic payload (hex) to JSON; '-' reads lines from stdin"
    )
    decode.add_argument("characteristic", help="name, 16-bit UUID (2a37) or full UUID")
    decode.add_argument("payload", help="hex bytes, or - for one hex payload per stdin line")
    decode.add_argument("--channels", type=int, default=None, help="PMD compressed frames")
    decode.add_argument("--resolution", type=int, default=None, help="PMD compressed frames (bits)")
    decode.set_defaults(handler=_decode)

    _add_offline_commands(commands)
    return parser


def _add_study_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``session``, ``mark`` and ``assign``: the study context, told to the running daemon."""
    session = commands.add_parser("session", help="start or stop a participant's recording session")
    session.add_argument("action", choices=("start", "stop"))
    session.add_argument("--participant", default=None, help="required to start")
    session.add_argument("--label", default=None, help="e.g. night")
    session.add_argument("--config", type=Path, default=Path("config.yaml"))
    session.set_defaults(handler=_session)

    mark = commands.add_parser("mark", help="an event marker now, e.g. 'exercise start'")
    mark.add_argument("text")
    mark.add_argument("--participant", default=None, help="default: the only open session's")
    mark.add_argument("--config", type=Path, default=Path("config.yaml"))
    mark.set_defaults(handler=_mark)

    assign = commands.add_parser("assign", help="a device is worn by a participant from now on")
    assign.add_argument("--device", required=True)
    assign.add_argument("--participant", default=None, help="omit: nobody wears it")
    assign.add_argument("--from", dest="from_time", default=None, help="ISO 8601 or epoch s")
    assign.add_argument("--config", type=Path, default=Path("config.yaml"))
    assign.set_defaults(handler=_assign)


def _add_data_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``export`` and ``plot``: what the outbox holds, for researchers."""
    export = commands.add_parser("export", help="stored waveforms, vitals, markers: csv|wfdb|edf")
    export.add_argument("--device", required=True)
    export.add_argument("--from", dest="from_time", default=None, help="ISO 8601 or epoch s")
    export.add_argument("--to", dest="to_time", default=None, help="ISO 8601 or epoch s")
    export.add_argument("--participant", default=None)
    export.add_argument("--session", type=int, default=None)
    export.add_argument("--format", choices=("csv", "wfdb", "edf"), default="csv")
    export.add_argument("--out", type=Path, required=True, help="folder for the files")
    export.add_argument("--config", type=Path, default=Path("config.yaml"))
    export.set_defaults(handler=_export)

    plot = commands.add_parser("plot", help="draw a stored 12-lead result (PNG, clinical layout)")
    plot.add_argument("--device", required=True, help="device id")
    plot.add_argument("--at", default=None, help="the result at or before this time (ISO 8601)")
    plot.add_argument("--out", type=Path, required=True, help="the PNG to write")
    plot.add_argument("--config", type=Path, default=Path("config.yaml"))
    plot.set_defaults(handler=_plot)


def _add_offline_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``process``, ``diagnose`` and ``emulator``: tools beside the daemon."""
    process = commands.add_parser(
        "process", help="apply the gateway's signal chain to a recording (CSV) offline"
    )
    process.add_argument("source", type=Path, help="CSV: samples, or time_s,value")
    process.add_argument("--kind", choices=("ppg", "ecg"), required=True)
    process.add_argument("--rate", type=int, required=True, help="nominal sample rate (Hz)")
    process.add_argument("--resample", type=int, default=None, help="output rate (Hz)")
    process.add_argument("--out", type=Path, required=True, help="filtered signal (CSV)")
    process.add_argument("--json", action="store_true", help="one JSON object per window")
    process.add_argument("--config", type=Path, default=None, help="take the dsp section from it")
    process.set_defaults(handler=_process)

    ecg = commands.add_parser("ecg", help="PPG recording -> ECG (and 12 leads) via HeartVoice")
    ecg.add_argument("--from-ppg", type=Path, required=True, dest="source", help="CSV")
    ecg.add_argument("--rate", type=int, required=True, help="the recording's rate (Hz)")
    ecg.add_argument("--twelve-lead", action="store_true", help="also MCMA 12 leads")
    ecg.add_argument("--out", type=Path, required=True, help="folder for one CSV per window")
    ecg.add_argument("--config", type=Path, default=Path("config.yaml"))
    ecg.set_defaults(handler=_ecg)

    _add_data_commands(commands)

    diffusets = commands.add_parser("diffusets", help="12-lead ECG images for a clinical text")
    diffusets.add_argument("--text", required=True, help="diagnoses joined by |")
    diffusets.add_argument("--age", type=int, required=True)
    diffusets.add_argument("--sex", choices=("M", "F"), required=True)
    diffusets.add_argument("--hr", type=int, required=True, help="heart rate (bpm)")
    diffusets.add_argument("--batch", type=int, default=1)
    diffusets.add_argument("--out", type=Path, required=True, help="folder for the PNGs")
    diffusets.add_argument("--config", type=Path, default=Path("config.yaml"))
    diffusets.set_defaults(handler=_diffusets)

    diagnose = commands.add_parser("diagnose", help="12-meridian diagnosis with the latest vitals")
    diagnose.add_argument("--symptoms", required=True, help="comma-separated")
    diagnose.add_argument("--tongue", type=Path, default=None, help="a JPG or PNG of the tongue")
    diagnose.add_argument("--device", default=None, help="device id (default: the first)")
    diagnose.add_argument("--config", type=Path, default=Path("config.yaml"))
    diagnose.add_argument("--json", action="store_true", help="the raw answer")
    diagnose.set_defaults(handler=_diagnose)

    emulator = commands.add_parser("emulator", help="serve the cloud APIs' emulator")
    emulator.add_argument("--host", default=os.environ.get("WGW_EMULATOR_HOST", "127.0.0.1"))
    emulator.add_argument(
        "--port", type=int, default=int(os.environ.get("WGW_EMULATOR_PORT", "8080"))
    )
    emulator.add_argument(
        "--plan",
        choices=("free", "basic", "pro", "enterprise"),
        default=os.environ.get("WGW_EMULATOR_PLAN", "free"),
    )
    emulator.add_argument(
        "--email", default=os.environ.get("WGW_EMULATOR_EMAIL", "demo@example.com")
    )
    emulator.add_argument(
        "--password", default=os.environ.get("WGW_EMULATOR_PASSWORD", "demo-password")
    )
    emulator.add_argument(
        "--tcm-api-key", default=os.environ.get("WGW_EMULATOR_TCM_API_KEY", "tcm-demo-key")
    )
    emulator.add_argument(
        "--token-ttl-s",
        type=float,
        default=float(os.environ.get("WGW_EMULATOR_TOKEN_TTL_S", "86400")),
    )
    emulator.add_argument(
        "--faults",
        default=os.environ.get("WGW_EMULATOR_FAULTS", "{}"),
        help='initial faults as JSON, e.g. \'{"latency_s": 0.2, "error_rates": {"503": 0.1}}\'',
    )
    emulator.add_argument(
        "--heartvoice-api-key",
        default=os.environ.get("WGW_EMULATOR_HEARTVOICE_API_KEY", "heartvoice-demo-key"),
    )
    emulator.set_defaults(handler=_emulator)


def _load(args: argparse.Namespace) -> Settings | None:
    configure_logging(args.log_level)
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"config error: {problem}", file=sys.stderr)
        return None
    configure_logging(args.log_level, settings.logging.format)
    return settings


def _run(args: argparse.Namespace) -> int:
    settings = _load(args)
    if settings is None:
        return EX_CONFIG
    from gateway.daemon import Daemon  # noqa: PLC0415 - keep `wgw --help` and config errors fast

    daemon: Daemon | None = None

    def describe() -> str:
        return daemon.abandoned_now() if daemon is not None else "the start"

    guard = ShutdownGuard(settings.shutdown_timeout_s, describe)

    async def main() -> None:
        nonlocal daemon
        daemon = Daemon(settings)

        def stop() -> None:
            assert daemon is not None
            guard.arm()
            daemon.stop()

        _on_signals(stop)
        await daemon.run()

    # What the imports built lives as long as the process: out of the collector's sight, a
    # full collection no longer walks it (one paused the event loop 20-50 ms, a live
    # reading's whole latency budget).
    gc.freeze()
    try:
        asyncio.run(main())
    except (OSError, sqlite3.Error, StorageError) as exc:
        if daemon is None or daemon.started:
            raise
        # a card gone read-only or failing at boot: one line, and systemd tries again later
        print(f"wgw: the store {settings.storage.path} cannot be opened: {exc}", file=sys.stderr)
        return EX_IOERR
    return EXIT_ABANDONED if daemon is not None and daemon.abandoned else 0


def _demo(args: argparse.Namespace) -> int:
    settings = _load(args)
    if settings is None:
        return EX_CONFIG
    from gateway.demo import run_demo  # noqa: PLC0415

    return asyncio.run(run_demo(settings, args.duration, _on_signals))


def _scan(args: argparse.Namespace) -> int:
    settings = _load(args)
    if settings is None:
        return EX_CONFIG
    from gateway.scan import print_scan  # noqa: PLC0415

    return asyncio.run(print_scan(settings, args.duration, as_json=args.json))


def _queue(args: argparse.Namespace) -> int:
    settings = _load(args)
    if settings is None:
        return EX_CONFIG
    from gateway.queue_cli import Selection, run_queue  # noqa: PLC0415

    selection = Selection(args.sink, args.participant, args.session)
    return run_queue(settings.storage.path, args.action, selection, as_json=args.json)


def _status(args: argparse.Namespace) -> int:
    settings = _load(args)
    if settings is None:
        return EX_CONFIG
    from gateway.status_cli import main_status  # noqa: PLC0415

    return main_status(settings.http, as_json=args.json)


def _sync(args: argparse.Namespace) -> int:
    settings = _load(args)
    if settings is None:
        return EX_CONFIG
    from gateway.sync_cli import main_sync  # noqa: PLC0415

    return main_sync(settings.http, full=args.full, timeout_s=args.timeout)


def _study_post(args: argparse.Namespace, path: str, body: dict[str, object]) -> int:
    settings = _load(args)
    if settings is None:
        return EX_CONFIG
    from gateway.study_cli import post  # noqa: PLC0415

    return post(settings.http, path, body)


def _session(args: argparse.Namespace) -> int:
    if args.action == "start":
        if args.participant is None:
            print("error: session start needs --participant", file=sys.stderr)
            return 2
        body = {"participant": args.participant, "label": args.label}
        return _study_post(args, "/api/session/start", body)
    return _study_post(args, "/api/session/stop", {"participant": args.participant})


def _mark(args: argparse.Namespace) -> int:
    return _study_post(args, "/api/mark", {"text": args.text, "participant": args.participant})


def _assign(args: argparse.Namespace) -> int:
    from gateway.plot_cli import parse_time  # noqa: PLC0415

    body: dict[str, object] = {"device": args.device, "participant": args.participant}
    if args.from_time is not None:
        try:
            body["from"] = parse_time(args.from_time)
        except ValueError:
            print(f"error: --from {args.from_time!r} is not ISO 8601 or epoch", file=sys.stderr)
            return 2
    return _study_post(args, "/api/assign", body)


def _decode(args: argparse.Namespace) -> int:
    from drivers.catalog import decode_json, lookup  # noqa: PLC0415
    from drivers.errors import DecodeError  # noqa: PLC0415

    characteristic = lookup(args.characteristic)
    if characteristic is None:
        print(f"error: unknown characteristic {args.characteristic!r}", file=sys.stderr)
        return 2

    def one(text: str) -> dict[str, object]:
        try:
            data = bytes.fromhex(text.strip().replace(":", "").replace(" ", ""))
        except ValueError:
            raise DecodeError(characteristic.name, "not hex") from None
        return decode_json(
            characteristic, data, channels=args.channels, resolution_bits=args.resolution
        )

    if args.payload != "-":
        try:
            print(json.dumps(one(args.payload)))
        except DecodeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        return 0
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            print(json.dumps(one(line)), flush=True)
        except DecodeError as exc:
            print(json.dumps({"error": str(exc)}), flush=True)
    return 0


def _process(args: argparse.Namespace) -> int:
    from gateway.config import DspConfig  # noqa: PLC0415
    from gateway.process_cli import run_process  # noqa: PLC0415

    dsp = DspConfig()
    if args.config is not None:
        settings = _load(args)
        if settings is None:
            return EX_CONFIG
        dsp = settings.dsp
    return run_process(
        args.source, args.kind, args.rate, args.resample, args.out, dsp=dsp, as_json=args.json
    )


def _diagnose(args: argparse.Namespace) -> int:
    settings = _load(args)
    if settings is None:
        return EX_CONFIG
    from gateway.diagnose_cli import run_diagnose  # noqa: PLC0415

    return asyncio.run(
        run_diagnose(settings, args.symptoms, args.tongue, args.device, as_json=args.json)
    )


def _ecg(args: argparse.Namespace) -> int:
    settings = _load(args)
    if settings is None:
        return EX_CONFIG
    from gateway.ecg_cli import run_ecg  # noqa: PLC0415

    return asyncio.run(run_ecg(settings, args.source, args.rate, args.out, twelve=args.twelve_lead))


def _export(args: argparse.Namespace) -> int:
    settings = _load(args)
    if settings is None:
        return EX_CONFIG
    from buffers.inspect import Selected  # noqa: PLC0415
    from gateway.export.cli import run_export  # noqa: PLC0415
    from gateway.plot_cli import parse_time  # noqa: PLC0415

    try:
        start = parse_time(args.from_time) if args.from_time else float("-inf")
        end = parse_time(args.to_time) if args.to_time else float("inf")
    except ValueError:
        print("error: --from/--to take ISO 8601 or epoch seconds", file=sys.stderr)
        return 2
    selection = Selected(args.device, start, end, args.participant, args.session)
    return run_export(settings.storage.path, selection, args.format, args.out)


def _plot(args: argparse.Namespace) -> int:
    settings = _load(args)
    if settings is None:
        return EX_CONFIG
    from gateway.plot_cli import run_plot  # noqa: PLC0415

    return run_plot(settings.storage.path, args.device, args.at, args.out)


def _diffusets(args: argparse.Namespace) -> int:
    settings = _load(args)
    if settings is None:
        return EX_CONFIG
    from gateway.ecg_cli import run_diffusets  # noqa: PLC0415

    return asyncio.run(
        run_diffusets(
            settings,
            args.text,
            age=args.age,
            sex=args.sex,
            hr=args.hr,
            batch=args.batch,
            out=args.out,
        )
    )


def _emulator(args: argparse.Namespace) -> int:
    configure_logging(args.log_level)
    from gateway.emulator.app import EmulatorConfig  # noqa: PLC0415
    from gateway.emulator.serve import serve_forever  # noqa: PLC0415

    try:
        faults = json.loads(args.faults)
        if not isinstance(faults, dict):
            raise ValueError("not an object")
    except ValueError as exc:
        print(f"error: --faults must be a JSON object: {exc}", file=sys.stderr)
        return 2
    config = EmulatorConfig(
        email=args.email,
        password=args.password,
        tcm_api_key=args.tcm_api_key,
        heartvoice_api_key=args.heartvoice_api_key,
        plan=args.plan,
        token_ttl_s=args.token_ttl_s,
        faults=faults,
    )
    asyncio.run(serve_forever(config, args.host, args.port, _on_signals))
    return 0


def _on_signals(callback: Callable[[], None]) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, callback)
