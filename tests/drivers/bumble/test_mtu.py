"""The ATT MTU a device agrees to: PMD frames fitted to it by the device, or a stream the link
cannot carry refused by name; never a frame cut short. On both backends.
"""

from __future__ import annotations

import logging

import pytest

from drivers.ble.link_spec import DeviceSpec
from drivers.frames import WaveformChunk
from drivers.polar import pmd
from drivers.sim.devices import SimDevice, preset
from tests.drivers.streaming import received, stream_until
from tests.support import BACKENDS


@pytest.mark.parametrize("kind", BACKENDS)
async def test_a_strap_at_the_default_mtu_sends_shorter_frames_and_loses_nothing(
    kind: str,
) -> None:
    """Test an H10-like strap that takes no more than MTU 23: its 73-sample ECG frames (229
    bytes) come as frames of 3 samples (19 bytes), every sample whole, none cut.
    """
    device = SimDevice(preset("strap", "5A:00:00:00:01:01", "Strap", max_mtu=23))
    spec = DeviceSpec("s", device.address, (pmd.StreamSettings("ecg", 130, 14, 1),))
    link, frames = await stream_until(
        device, spec, kind, lambda frames: received(frames, "ecg") > 300
    )
    stats = link.statistics()
    assert stats.mtu == 23 and stats.not_started == {} and stats.decode_errors == 0
    ecg = device.counters["ecg"]
    assert ecg.malformed == 0 and received(frames, "ecg") == ecg.sent
    chunks = [f for f in frames if isinstance(f, WaveformChunk)]
    assert max(f.samples.shape[0] for f in chunks) == 3


@pytest.mark.parametrize("kind", BACKENDS)
async def test_a_stream_whose_one_sample_frame_does_not_fit_is_refused_by_name(
    kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Test a Verity-like arm band held at MTU 23: one 4-channel PPG sample needs a 22-byte
    frame, 2 more than a notification carries. The stream is not started (one error naming
    device, MTU and stream) and heart rate flows on.
    """
    device = SimDevice(preset("armband", "5A:00:00:00:01:02", "Band", max_mtu=23))
    spec = DeviceSpec("band", device.address, (pmd.StreamSettings("ppg", 135, 22, 4),))
    with caplog.at_level(logging.ERROR, logger="drivers.ble.link"):
        link, frames = await stream_until(
            device, spec, kind, lambda frames: received(frames, "heart_rate") >= 3
        )
    stats = link.statistics()
    assert stats.mtu == 23 and set(stats.not_started or {}) == {"ppg"}
    assert device.counters["ppg"].sent == 0 and device.counters["ppg"].malformed == 0
    assert received(frames, "heart_rate") == device.counters["heart_rate"].sent >= 3
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "band" in errors[0] and "MTU 23" in errors[0] and "ppg" in errors[0]
    assert "needs 22" in errors[0]
