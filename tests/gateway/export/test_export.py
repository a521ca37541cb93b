"""`wgw export`: what a daemon stored, read back with wfdb, pyedflib and csv, sample for sample."""

from __future__ import annotations

import asyncio
import csv
import json
from typing import TYPE_CHECKING

import numpy as np
import pyedflib
import pytest
import wfdb
import yaml

from buffers import inspect
from buffers.inspect import Selected
from gateway.cli.export import run_export
from gateway.config import Settings
from gateway.daemon import Daemon
from gateway.export.segments import segments
from tests.support import daemon_config, run_wgw, wait_for

if TYPE_CHECKING:
    from pathlib import Path

    from aiohttp.test_utils import TestServer
    from numpy.typing import NDArray


def pmd(measurement: str, rate_hz: int, bits: int, channels: int) -> dict[str, object]:
    return {
        "measurement": measurement,
        "sample_rate_hz": rate_hz,
        "resolution_bits": bits,
        "channels": channels,
    }


@pytest.fixture
async def recorded(tmp_path: Path, emulator: TestServer) -> tuple[Path, Path, float]:
    """A few seconds of a 3-lead ECG patch (small values) and an armband's 4-channel PPG (more
    than 16 bits), a session and a marker: the config file, the outbox, the marker's time.
    """
    raw = daemon_config(
        tmp_path,
        str(emulator.make_url("")),
        [
            {"model": "patch", "address": "5A:00:00:00:00:01"},
            {"model": "armband", "address": "5A:00:00:00:00:02"},
        ],
        [
            {
                "id": "patch",
                "address": "5A:00:00:00:00:01",
                "participant": "P017",
                "pmd": [pmd("ecg", 500, 24, 3)],
            },
            {
                "id": "arm",
                "address": "5A:00:00:00:00:02",
                "participant": "P017",
                "pmd": [pmd("ppg", 135, 22, 4)],
            },
        ],
        ble={"sim": {"speed": 4.0}},
    )
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(raw))
    daemon = Daemon(Settings.model_validate(raw))
    runner = asyncio.create_task(daemon.run())
    try:
        await daemon.wait_ready()
        study = daemon.study_context()
        await study.start_session("P017", "test")

        async def samples(device: int) -> bool:
            return (await daemon.statistics()).devices[device].samples >= 1500

        await wait_for(lambda: samples(0))
        marker = await study.mark("cough", None)
        await wait_for(lambda: samples(1))
    finally:
        daemon.stop()
        await runner
    return config, tmp_path / "wgw.sqlite", marker.t_s


def expected(db: Path, device: str) -> list[tuple[float, float, NDArray[np.int32]]]:
    segs = segments(inspect.selected_records(db, Selected(device)))
    assert segs
    return [(s.t0_s, s.rate_hz, s.samples) for s in segs]


async def test_wfdb_round_trip_with_the_marker_as_an_annotation(
    recorded: tuple[Path, Path, float], tmp_path: Path
) -> None:
    """Test the patch's segments read back exactly, and the marker at its sample."""
    config, db, marked_at = recorded
    out = tmp_path / "wfdb"
    code, stdout, err = await run_wgw(
        "export",
        "--device",
        "patch",
        "--format",
        "wfdb",
        "--out",
        str(out),
        "--config",
        str(config),
    )
    assert code == 0, err
    annotated = 0
    for t0, rate, samples in expected(db, "patch"):
        headers = [p for p in stdout.split() if p.endswith(".hea")]
        name = next(
            h[: -len(".hea")]
            for h in headers
            if wfdb.rdheader(h[:-4]).fs == rate
            and abs(wfdb.rdheader(h[:-4]).base_datetime.timestamp() - t0) < 1e-3
        )
        record = wfdb.rdrecord(name, physical=False)
        assert record.sig_name == ["ecg0", "ecg1", "ecg2"]
        assert np.array_equal(record.d_signal, samples)
        if t0 <= marked_at < t0 + len(samples) / rate:
            ann = wfdb.rdann(name, "atr")
            # beside it, maybe the notes of the settings each device's stream started with
            cough = [
                (at, a) for at, a in zip(ann.sample, ann.aux_note, strict=True) if ": PMD " not in a
            ]
            assert cough == [(round((marked_at - t0) * rate), "cough")]
            annotated += 1
    assert annotated == 1


async def test_edf_round_trip_picks_bdf_when_16_bits_do_not_hold_the_samples(
    recorded: tuple[Path, Path, float], tmp_path: Path
) -> None:
    """Test both devices: samples read back digitally equal, the marker as an annotation."""
    _, db, marked_at = recorded
    out = tmp_path / "edf"
    annotations: list[str] = []
    for device, suffix in (("patch", ".edf"), ("arm", ".bdf")):
        assert run_export(db, Selected(device), "edf", out) == 0
        files = sorted(out.glob(f"{device}_*{suffix}"))
        segs = expected(db, device)
        assert len(files) == len(segs)
        for path, (_, rate, samples) in zip(files, segs, strict=True):
            with pyedflib.EdfReader(str(path)) as reader:
                assert reader.getSampleFrequency(0) == rate
                for i in range(samples.shape[1]):
                    signal = reader.readSignal(i, digital=True)
                    assert np.array_equal(signal[: len(samples)], samples[:, i])
                annotations += list(reader.readAnnotations()[2])
    assert annotations.count("cough") == 2  # one segment of each device holds the moment
    assert marked_at > 0


async def test_csv_of_one_session_has_samples_vitals_and_markers(
    recorded: tuple[Path, Path, float], tmp_path: Path
) -> None:
    """Test the session selection: every sample row, the vitals with their labels, the marker."""
    _, db, _ = recorded
    out = tmp_path / "csv"
    assert run_export(db, Selected("arm", session=1), "csv", out) == 0
    with next(out.glob("arm_vitals.csv")).open() as f:
        vitals = list(csv.DictReader(f))
    assert vitals
    assert {(v["participant_id"], v["session_id"]) for v in vitals} == {("P017", "1")}
    assert {v["backfilled"] for v in vitals} == {"0"}  # all live: an arm band keeps no records
    assert all(
        "heart_rate_bpm" in json.loads(v["values"]) for v in vitals if v["kind"] == "heart_rate"
    )
    with next(out.glob("arm_markers.csv")).open() as f:
        texts = [row["text"] for row in csv.DictReader(f)]
    # beside it, the notes of the settings each device's stream started with, if in the session
    assert [t for t in texts if ": PMD " not in t] == ["cough"]
    in_session = inspect.selected_records(db, Selected("arm", session=1))
    total = sum(len(s.samples) for s in segments(in_session))
    exported = 0
    for path in out.glob("arm_ppg_*.csv"):
        with path.open() as f:
            exported += sum(1 for _ in csv.DictReader(f))
    assert exported == total


async def test_nothing_selected_is_one_error_line(
    recorded: tuple[Path, Path, float], tmp_path: Path
) -> None:
    """Test an unknown participant: exit 1, nothing written."""
    config, _, _ = recorded
    code, out, err = await run_wgw(
        "export",
        "--device",
        "arm",
        "--participant",
        "P999",
        "--out",
        str(tmp_path / "x"),
        "--config",
        str(config),
    )
    assert code == 1
    assert out == ""
    assert "no stored data for 'arm'" in err
