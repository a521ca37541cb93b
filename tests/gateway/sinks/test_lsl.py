"""The LSL lane with real inlets in the test process (loopback): every sample once, in order, on
LSL's clock within a stated bound of the simulator's ground truth; metadata read back through
the inlet; markers both ways; mne-lsl's binding where pylsl cannot load; the daemon without
either says what to install."""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pylsl
import pytest
import yaml

from buffers import inspect
from buffers.inspect import Selected
from gateway import codec
from gateway.cli.common import EX_CONFIG
from gateway.config import Settings
from gateway.daemon import Daemon
from gateway.simulation import build_world
from tests.support import ROOT, STRAP_ECG, daemon_config, spawn_wgw, wait_for

if TYPE_CHECKING:
    from aiohttp.test_utils import TestServer

    from drivers.sim.devices import SimDevice

STRAP = "5A:00:00:00:00:31"
# The mapping's error bound: the gateway places a PMD frame by the strap's own clock, learnt
# from the quickest deliveries, so what is left is delivery time (measured 0.5-1.8 ms).
BOUND_S = 0.010


def config(tmp_path: Path, emulator: TestServer, **lsl: object) -> dict[str, Any]:
    raw = daemon_config(
        tmp_path,
        str(emulator.make_url("")),
        [{"model": "strap", "address": STRAP}],
        [
            {
                "id": "strap",
                "address": STRAP,
                "participant": "P017",
                "pmd": [STRAP_ECG],
            }
        ],
        lsl={"enabled": True, **lsl},
    )
    raw["gateway_id"] = f"t{uuid.uuid4().hex[:8]}"  # no other test's outlets are found
    return raw


async def inlet(source_id: str) -> Any:
    """An open inlet of the stream with ``source_id`` (resolved off the event loop: the daemon
    runs on it)."""
    found: list[Any] = []

    async def resolved() -> bool:
        found[:] = await asyncio.to_thread(pylsl.resolve_byprop, "source_id", source_id, 1, 0.5)
        return bool(found)

    await wait_for(resolved, timeout_s=15)
    opened = pylsl.StreamInlet(found[0], max_buflen=60, processing_flags=0)
    await asyncio.to_thread(opened.open_stream, 5.0)
    return opened


async def pull_all(opened: Any) -> tuple[list[list[Any]], list[float]]:
    """What the inlet holds now (waits a little for the last of it)."""
    samples: list[list[Any]] = []
    stamps: list[float] = []
    while True:
        chunk, ts = await asyncio.to_thread(opened.pull_chunk, 0.3)
        if not ts:
            return samples, stamps
        samples += chunk
        stamps += ts


def truth_lsl_s(world: Any, device_s: float) -> float:
    """A simulated time on the monotonic clock, which is LSL's ``local_clock``."""
    clock = world.clock
    mono_s: float = clock._start_mono_s + (device_s - clock._start_utc_s) / clock.speed
    return mono_s


async def test_ecg_and_heart_rate_arrive_once_in_order_on_lsls_clock(
    tmp_path: Path, emulator: TestServer
) -> None:
    """Test a strap's ECG (130 Hz) and heart rate through real inlets: the inlet's samples are
    exactly the stored ones from its first on, each within BOUND_S of the time the strap took
    it; the metadata as LabRecorder reads it; a marker on the markers outlet."""
    raw = config(tmp_path, emulator)
    gw = raw["gateway_id"]
    settings = Settings.model_validate(raw)
    world = build_world(settings.ble.sim)
    strap: SimDevice = world.peripherals[STRAP]  # type: ignore[assignment]
    daemon = Daemon(settings, sim_world=world)
    runner = asyncio.create_task(daemon.run())
    try:
        await daemon.wait_ready()
        ecg = await inlet(f"wgw/{gw}/strap/ecg")
        heart = await inlet(f"wgw/{gw}/strap/heart_rate")
        markers = await inlet(f"wgw/{gw}/markers/markers")
        info = await asyncio.to_thread(ecg.info, 5.0)
        ecg_before, hr_before = (strap.counters[s].sent for s in ("ecg", "heart_rate"))
        await wait_for(lambda: strap.counters["ecg"].sent >= ecg_before + 130 * 4, timeout_s=20)
        marked_at = pylsl.local_clock()
        await daemon.study_context().mark("stimulus onset", None)
        await wait_for(lambda: strap.counters["heart_rate"].sent >= hr_before + 5, timeout_s=20)
        world.pause()
        sent = strap.counters["ecg"].sent + strap.counters["heart_rate"].sent

        async def all_stored() -> bool:
            devices = (await daemon.statistics()).devices
            return sum(d.samples + d.readings for d in devices) >= sent

        await wait_for(all_stored)
        lane = (await daemon.statistics()).lsl
        assert lane is not None and lane.outlets >= 4 and lane.dropped == 0  # + rr, battery
        ecg_samples, ecg_stamps = await pull_all(ecg)
        hr_samples, _ = await pull_all(heart)
        marker_samples, marker_stamps = await pull_all(markers)
    finally:
        daemon.stop()
        await runner

    records = inspect.selected_records(tmp_path / "wgw.sqlite", Selected("strap"))
    stored = np.concatenate([codec.waveform_samples(r)[:, 0] for r in records if r.stream == "ecg"])
    got = np.array([s[0] for s in ecg_samples])
    assert len(got) >= 130 * 3
    first = next(j for j in range(len(stored)) if np.array_equal(stored[j : j + 40], got[:40]))
    assert np.array_equal(stored[first:], got)  # once each, in order, to the last
    ecg_counters = strap.counters["ecg"]
    assert ecg_counters.sent == len(stored)  # nothing lost between the strap and the outbox
    # the strap's k-th sample (counting the ones taken before the link) is its clock's
    # started + (k + 1) / rate; the samples before the first start were not sent
    k = ecg_counters.lost_link_down + first + np.arange(len(got))
    truth = np.array([truth_lsl_s(world, strap.started_utc_s + (i + 1) / 130) for i in k])
    errors = np.array(ecg_stamps) - truth
    assert np.abs(errors).max() < BOUND_S, (errors.min(), errors.max())

    stored_bpm = [
        codec.vital_values(r)["heart_rate_bpm"] for r in records if r.stream == "heart_rate"
    ]
    bpm = [s[0] for s in hr_samples]
    start = len(stored_bpm) - len(bpm)
    assert start >= 0 and bpm == stored_bpm[start:]  # float32 holds these whole numbers

    assert (info.name(), info.type(), info.channel_count()) == ("strap ecg", "ECG", 1)
    assert info.nominal_srate() == 130.0 and info.source_id() == f"wgw/{gw}/strap/ecg"
    desc = info.desc()
    channel = desc.child("channels").child("channel")
    assert (channel.child_value("label"), channel.child_value("unit")) == ("ECG", "microvolts")
    assert desc.child("acquisition").child_value("manufacturer") == "wearable-gateway simulator"
    assert desc.child("acquisition").child_value("model") == "strap"
    assert desc.child("gateway").child_value("participant_id") == "P017"
    assert desc.child("gateway").child_value("gateway_id") == gw

    texts = [s[0] for s in marker_samples]
    assert "stimulus onset" in texts
    at = marker_stamps[texts.index("stimulus onset")]
    assert abs(at - marked_at) < 0.05


async def test_a_marker_stream_of_the_lab_is_stored_with_the_session(
    tmp_path: Path, emulator: TestServer
) -> None:
    """Test ``lsl.marker_inlet``: markers another program sends on LSL are stored like ``wgw
    mark``, with the open session of the wearer."""
    name = f"lab markers {uuid.uuid4().hex[:6]}"
    raw = config(tmp_path, emulator, marker_inlet=name)
    info = pylsl.StreamInfo(name, "Markers", 1, 0.0, pylsl.cf_string, f"lab/{name}")
    lab = pylsl.StreamOutlet(info)
    daemon = Daemon(Settings.model_validate(raw))
    runner = asyncio.create_task(daemon.run())
    try:
        await daemon.wait_ready()
        session = await daemon.study_context().start_session("P017", "eeg")
        await wait_for(lab.have_consumers, timeout_s=15)
        lab.push_sample(["eyes closed"])

        await wait_for(lambda: _markers(tmp_path) != [], timeout_s=10)
    finally:
        daemon.stop()
        await runner
    assert ("eyes closed", "P017", session.id) in _markers(tmp_path)


def _markers(tmp_path: Path) -> list[tuple[str, str, int]]:
    with sqlite3.connect(tmp_path / "wgw.sqlite") as db:
        return db.execute(
            "SELECT text, participant_id, session_id FROM markers WHERE text = 'eyes closed'"
        ).fetchall()


async def test_where_pylsl_cannot_load_mne_lsls_binding_carries_the_lane(
    tmp_path: Path, emulator: TestServer
) -> None:
    """Test a daemon whose pylsl finds no liblsl (pip's pylsl on a Pi: this pylsl without its
    bundled library): it says it uses mne-lsl and why, a pylsl inlet gets the strap's ECG
    exactly as stored, with its metadata, and a lab's marker stream is stored."""
    name = f"lab markers {uuid.uuid4().hex[:6]}"
    raw = config(tmp_path, emulator, marker_inlet=name)
    gw = raw["gateway_id"]
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    lab = pylsl.StreamOutlet(pylsl.StreamInfo(name, "Markers", 1, 0.0, "string", f"lab/{name}"))
    pure = tmp_path / "pure"
    shutil.copytree(
        Path(pylsl.__file__).parent,
        pure / "pylsl",
        ignore=lambda _, names: [n for n in names if n.startswith("liblsl")],
    )
    log = tmp_path / "daemon.log"
    with log.open("wb") as out:
        daemon = await spawn_wgw(
            "run",
            "--config",
            str(path),
            stdout=out,
            stderr=out,
            env={**os.environ, "PYTHONPATH": f"{pure}{os.pathsep}{ROOT}"},
        )
    try:
        ecg = await inlet(f"wgw/{gw}/strap/ecg")
        info = await asyncio.to_thread(ecg.info, 5.0)
        got: list[int] = []

        async def three_seconds() -> bool:
            samples, _ = await pull_all(ecg)
            got.extend(s[0] for s in samples)
            return len(got) >= 130 * 3

        await wait_for(three_seconds, timeout_s=20)
        await wait_for(lab.have_consumers, timeout_s=15)
        lab.push_sample(["eyes closed"])
        await wait_for(lambda: _markers(tmp_path) != [], timeout_s=10)
        ecg.close_stream()
    finally:
        daemon.terminate()
        assert await asyncio.wait_for(daemon.wait(), 30) == 0
    assert "LSL: mne-lsl 1." in log.read_text()
    assert "(pylsl: LSL binary library file was not found" in log.read_text()

    records = inspect.selected_records(tmp_path / "wgw.sqlite", Selected("strap"))
    stored = np.concatenate([codec.waveform_samples(r)[:, 0] for r in records if r.stream == "ecg"])
    first = next(j for j in range(len(stored)) if np.array_equal(stored[j : j + 40], got[:40]))
    assert np.array_equal(stored[first : first + len(got)], got)  # once each, in order
    assert (info.name(), info.type(), info.nominal_srate()) == ("strap ecg", "ECG", 130.0)
    assert info.desc().child("gateway").child_value("participant_id") == "P017"
    assert [text for text, _, _ in _markers(tmp_path)] == ["eyes closed"]


def _without(*modules: str) -> list[str]:
    """The command line of ``wgw`` in a Python where ``modules`` cannot be imported."""
    blocked = "".join(f"sys.modules[{m!r}] = None; " for m in modules)
    return [
        sys.executable,
        "-c",
        f"import sys; {blocked}from gateway.cli.entry import main; sys.exit(main(sys.argv[1:]))",
    ]


async def test_without_an_lsl_binding_the_daemon_says_what_to_install(
    tmp_path: Path, emulator: TestServer
) -> None:
    """Test ``lsl.enabled`` where neither pylsl nor mne-lsl can be imported: one config error
    line saying what to install and why each failed, and the exit status systemd does not
    restart on."""
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config(tmp_path, emulator)))
    done = await asyncio.to_thread(
        subprocess.run,
        [*_without("pylsl", "mne_lsl"), "run", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == EX_CONFIG
    assert len(lines) == 1
    assert lines[0].startswith("config error: lsl: ")
    assert "lsl.enabled needs pylsl or mne-lsl" in lines[0]
    assert "pip install 'wearable-gateway[lsl]'" in lines[0]
    assert "pylsl: import of pylsl halted" in lines[0]


def test_a_full_queue_drops_and_counts_and_never_waits() -> None:
    """Test the lane with no task pushing (a consumer that stalled): offers return at once,
    the queue keeps its bound and the rest are counted as dropped."""
    from drivers.frames import VitalReading  # noqa: PLC0415
    from gateway.config import LslConfig  # noqa: PLC0415
    from gateway.readings import Reading  # noqa: PLC0415
    from gateway.sinks.lsl import LslSink  # noqa: PLC0415

    async def store(text: str) -> None:
        del text

    sink = LslSink(
        LslConfig(enabled=True, queue_max=5),
        "gw",
        mono_of_utc=float,
        mono_now=time.monotonic,
        device_facts=lambda _: {},
        store_marker=store,
    )
    started = time.monotonic()
    for i in range(100):
        sink.offer(Reading(VitalReading("d", "heart_rate", i, 0.0, {"heart_rate_bpm": 60})))
    assert time.monotonic() - started < 0.5
    assert sink.statistics().dropped == 95
    assert "liblsl 1." in sink.statistics().library


pytestmark = pytest.mark.timeout(120)
