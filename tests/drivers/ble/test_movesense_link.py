"""A Movesense sensor over GSP through the device link, on both backends: its ECG, IMU, heart
rate and temperature as the gateway's streams, every sample accounted for."""

from __future__ import annotations

import numpy as np
import pytest

from drivers.ble.link_spec import DeviceSpec
from drivers.frames import VitalReading, WaveformChunk
from drivers.sim.devices import SimDevice, preset
from tests.drivers.streaming import received, stream_until
from tests.support import BACKENDS


@pytest.mark.parametrize("kind", BACKENDS)
async def test_ecg_imu_heart_rate_and_temperature_arrive_whole(kind: str) -> None:
    """Test ECG at 250 Hz, IMU6 at 52 Hz, HR and temperature subscribed by path: every sample
    and reading the sensor sent arrives, ECG in µV, acceleration in milli-G (gravity on z),
    each chunk placed by the sensor's own millisecond clock."""
    sensor = SimDevice(preset("movesense", "5A:00:00:00:03:01", "Movesense 174630000192"))
    paths = ("/Meas/ECG/250", "/Meas/IMU6/52", "/Meas/HR", "/Meas/Temp")
    spec = DeviceSpec("ms", sensor.address, movesense=paths)
    link, frames = await stream_until(
        sensor,
        spec,
        kind,
        lambda f: received(f, "ecg") >= 1000 and received(f, "temperature") >= 2,
    )
    assert received(frames, "ecg") == sensor.counters["ecg"].sent
    assert received(frames, "acc") == received(frames, "gyro") == sensor.counters["acc"].sent
    assert received(frames, "heart_rate") == sensor.counters["heart_rate"].sent >= 2
    assert received(frames, "temperature") == sensor.counters["temperature"].sent
    stats = link.statistics()
    assert stats.decode_errors == 0 and stats.not_started == {}

    ecg = [f for f in frames if isinstance(f, WaveformChunk) and f.stream == "ecg"]
    assert {f.sample_rate_hz for f in ecg} == {250.0}
    assert all(f.samples.shape == (16, 1) for f in ecg)
    peak_uv = max(int(np.abs(f.samples).max()) for f in ecg)
    assert 500 < peak_uv < 3000  # an R wave of ~1 mV, in µV
    steps = np.diff([f.t0_s for f in ecg])
    assert np.allclose(steps, 16 / 250, atol=0.02)  # the sensor's clock, not the arrival
    acc = np.concatenate(
        [f.samples for f in frames if isinstance(f, WaveformChunk) and f.stream == "acc"]
    )
    assert abs(float(np.median(acc[:, 2])) - 1000.0) < 10.0
    heart = [f for f in frames if isinstance(f, VitalReading) and f.stream == "heart_rate"]
    assert all(40 <= h.values["heart_rate_bpm"] <= 200 for h in heart)  # type: ignore[operator]
    assert all(len(h.values["rr_intervals_ms"]) == 1 for h in heart)  # type: ignore[arg-type]
    temps = [f for f in frames if isinstance(f, VitalReading) and f.stream == "temperature"]
    assert all(33.0 < t.values["temperature"] < 34.0 for t in temps)  # type: ignore[operator]


@pytest.mark.parametrize("kind", BACKENDS)
async def test_imu9_data_split_over_two_packets_is_put_back_together(kind: str) -> None:
    """Test IMU9 at 104 Hz: 8 samples of three vectors are 292 bytes of data, sent as a DATA
    packet and a DATA_PART2; every sample arrives, none mixed up."""
    sensor = SimDevice(preset("movesense", "5A:00:00:00:03:02", "Movesense 174630000193"))
    spec = DeviceSpec("ms", sensor.address, movesense=("/Meas/IMU9/104",))
    link, frames = await stream_until(sensor, spec, kind, lambda f: received(f, "mag") >= 400)
    sent = sensor.counters["acc"].sent
    assert received(frames, "acc") == received(frames, "gyro") == received(frames, "mag") == sent
    assert link.statistics().decode_errors == 0
    mag = np.concatenate(
        [f.samples for f in frames if isinstance(f, WaveformChunk) and f.stream == "mag"]
    )
    assert abs(float(np.median(mag[:, 0])) - 22_000.0) < 100.0  # 22 µT, in nT


@pytest.mark.parametrize("kind", BACKENDS)
async def test_malformed_packets_are_counted_and_dropped(kind: str) -> None:
    """Test a sensor corrupting one ECG notification in ten: each is a decode error, the rest
    arrive whole."""
    sensor = SimDevice(
        preset("movesense", "5A:00:00:00:03:03", "Movesense 174630000194", malformed_rate=0.1)
    )
    spec = DeviceSpec("ms", sensor.address, movesense=("/Meas/ECG/128",))
    link, frames = await stream_until(sensor, spec, kind, lambda f: received(f, "ecg") >= 800)
    ecg = sensor.counters["ecg"]
    assert ecg.malformed_packets > 0
    assert received(frames, "ecg") == ecg.sent
    assert link.statistics().decode_errors == ecg.malformed_packets
