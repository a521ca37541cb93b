"""Starting PMD streams as polar-ble-sdk does, on both backends: the feature read, the offered
settings (the nearest used, said once), several streams of one device, the start's factor."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
import pytest

from drivers.ble.link_spec import DeviceSpec
from drivers.frames import WaveformChunk
from drivers.polar import pmd
from drivers.sim.devices import SimDevice, preset
from tests.drivers.streaming import received, stream_until
from tests.support import BACKENDS

if TYPE_CHECKING:
    from collections.abc import Sequence

ECG = pmd.StreamSettings("ecg", 130, 14, 1)
ACC = pmd.StreamSettings("acc", 25, 16, 3)


def rates(frames: Sequence[object], stream: str) -> set[float]:
    return {f.sample_rate_hz for f in frames if isinstance(f, WaveformChunk) and f.stream == stream}


@pytest.mark.parametrize("kind", BACKENDS)
async def test_ecg_and_acc_of_one_strap_each_with_its_settings(kind: str) -> None:
    """Test an H10-like strap streaming ECG and its accelerometer at once: every sample of
    both, each at its own rate; the range config left out is the largest the strap offers."""
    strap = SimDevice(preset("strap", "5A:00:00:00:02:01", "Strap"))
    spec = DeviceSpec("strap", strap.address, (ECG, ACC))
    link, frames = await stream_until(
        strap, spec, kind, lambda f: received(f, "acc") >= 50 and received(f, "ecg") >= 300
    )
    assert received(frames, "ecg") == strap.counters["ecg"].sent
    assert received(frames, "acc") == strap.counters["acc"].sent >= 50
    assert rates(frames, "ecg") == {130.0} and rates(frames, "acc") == {25.0}
    stats = link.statistics()
    assert stats.decode_errors == 0 and stats.not_started == {}
    assert stats.pmd is not None and stats.pmd["acc"]["range"] == 8
    assert stats.pmd["ecg"]["asked"] == {} and stats.pmd["ecg"]["factor"] == 1.0


@pytest.mark.parametrize("kind", BACKENDS)
async def test_a_rate_the_device_does_not_offer_becomes_the_nearest_and_is_said(
    kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Test config asking the strap for ECG at 250 Hz: it offers 130, so 130 it is, said in
    one warning; the chunks carry 130 Hz and the status what was asked."""
    strap = SimDevice(preset("strap", "5A:00:00:00:02:02", "Strap"))
    spec = DeviceSpec("strap", strap.address, (pmd.StreamSettings("ecg", 250, 14, 1),))
    with caplog.at_level(logging.WARNING, logger="drivers.ble.link"):
        link, frames = await stream_until(strap, spec, kind, lambda f: received(f, "ecg") >= 300)
    assert received(frames, "ecg") == strap.counters["ecg"].sent
    assert rates(frames, "ecg") == {130.0}
    said = [r.getMessage() for r in caplog.records if "nearest" in r.getMessage()]
    assert len(said) == 1 and "strap" in said[0] and "sample_rate_hz 250 -> 130" in said[0]
    stats = link.statistics()
    assert stats.pmd is not None and stats.pmd["ecg"]["asked"] == {"sample_rate_hz": 250}
    assert stats.pmd["ecg"]["sample_rate_hz"] == 130


@pytest.mark.parametrize("kind", BACKENDS)
async def test_a_stream_the_device_does_not_offer_is_refused_by_name(
    kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Test config asking the strap for a gyroscope it does not have: one error naming the
    device, the stream and what it offers; its ECG streams on."""
    strap = SimDevice(preset("strap", "5A:00:00:00:02:03", "Strap"))
    gyro = pmd.StreamSettings("gyro", 52, 16, 3)
    spec = DeviceSpec("strap", strap.address, (ECG, gyro))
    with caplog.at_level(logging.ERROR, logger="drivers.ble.link"):
        link, frames = await stream_until(strap, spec, kind, lambda f: received(f, "ecg") >= 300)
    assert received(frames, "ecg") == strap.counters["ecg"].sent
    stats = link.statistics()
    assert set(stats.not_started or {}) == {"gyro"}
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "strap" in errors[0] and "gyro" in errors[0] and "ecg, acc" in errors[0]


@pytest.mark.parametrize("kind", BACKENDS)
async def test_a_device_that_never_answers_its_control_point_streams_all_the_same(
    kind: str,
) -> None:
    """Test a strap whose control point takes commands but never answers: the gateway waits
    for one answer, then writes the rest without waiting, and ECG and ACC stream as
    configured (the connect's time budget is not spent on waiting). Its ACC range must be
    configured: nothing tells the gateway which ranges it offers."""
    strap = SimDevice(preset("strap", "5A:00:00:00:02:05", "Strap", pmd_answers=False))
    spec = DeviceSpec("strap", strap.address, (ECG, pmd.StreamSettings("acc", 25, 16, 3, 8)))
    link, frames = await stream_until(
        strap, spec, kind, lambda f: received(f, "ecg") >= 300 and received(f, "acc") >= 50
    )
    assert received(frames, "ecg") == strap.counters["ecg"].sent
    assert received(frames, "acc") == strap.counters["acc"].sent
    assert link.statistics().connects == 1  # one connect: its subscribe never timed out


@pytest.mark.parametrize("kind", BACKENDS)
async def test_the_gyroscope_factor_comes_from_the_start_answer(kind: str) -> None:
    """Test a Verity-like arm band's gyroscope: the start's answer gives its factor (deg/s per
    count), kept with the stream's settings and applied; every sample arrives."""
    band = SimDevice(preset("armband", "5A:00:00:00:02:04", "Band"))
    spec = DeviceSpec("band", band.address, (pmd.StreamSettings("gyro", 52, 16, 3),))
    link, frames = await stream_until(band, spec, kind, lambda f: received(f, "gyro") >= 100)
    assert received(frames, "gyro") == band.counters["gyro"].sent >= 100
    assert band.counters["ppg"].sent == 0  # not asked for: not measured
    stats = link.statistics()
    assert stats.pmd is not None and stats.pmd["gyro"]["factor"] == pytest.approx(0.061)
    assert stats.pmd["gyro"]["range"] == 2000
    # stored in millidegrees/s: each count x 0.061 deg/s x 1000
    gyro = np.concatenate([f.samples for f in frames if isinstance(f, WaveformChunk)])
    assert np.any(gyro != 0) and np.all(gyro % 61 == 0)
