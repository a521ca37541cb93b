"""A simulated smart watch: Heart Rate service with RR, battery, and a Polar-PMD PPG stream."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from drivers.errors import DecodeError
from drivers.gatt import uuids
from drivers.gatt.heart_rate import HeartRateMeasurement, encode_heart_rate_measurement
from drivers.polar import pmd
from drivers.sim.peripheral import SimCharacteristic, SimPeripheral, SimService, StreamCounters
from drivers.sim.signals import HeartModel

if TYPE_CHECKING:
    import asyncio

# Polar PMD control point status codes (Polar BLE SDK, PmdControlPointResponse).
_STATUS_SUCCESS = 0
_STATUS_INVALID_SAMPLE_RATE = 8
_STATUS_NOT_SUPPORTED = 3
_PPG_CHANNELS = 4
_PPG_RESOLUTION_BITS = 22


@dataclass(frozen=True, slots=True)
class WatchSpec:
    """How a simulated watch behaves.

    Attributes:
        malformed_every: Every n-th heart-rate notification is truncated (0: never).
    """

    address: str
    name: str
    seed: int = 1
    heart_rate_interval_s: float = 1.0
    ppg_rate_hz: int = 55
    ppg_samples_per_packet: int = 11
    malformed_every: int = 0
    battery_pct: int = 87


class SimWatch(SimPeripheral):
    """A wrist-worn watch streaming heart rate (0x2A37) and 4-channel PMD PPG."""

    services = (
        SimService(
            uuids.HEART_RATE_SERVICE,
            (SimCharacteristic(uuids.HEART_RATE_MEASUREMENT, ("notify",)),),
        ),
        SimService(
            uuids.BATTERY_SERVICE,
            (SimCharacteristic(uuids.BATTERY_LEVEL, ("read", "notify")),),
        ),
        SimService(
            pmd.PMD_SERVICE,
            (
                SimCharacteristic(pmd.PMD_CONTROL_POINT, ("read", "write", "indicate")),
                SimCharacteristic(pmd.PMD_DATA, ("notify",)),
            ),
        ),
    )

    def __init__(self, spec: WatchSpec) -> None:
        super().__init__(spec.address, spec.name)
        self.spec = spec
        self.heart = HeartModel(spec.seed)
        self.heart_rate = StreamCounters()
        self.ppg = StreamCounters()
        self._ppg_streaming = False

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start the heart-rate and PPG clocks."""
        self.every(loop, self.spec.heart_rate_interval_s, self._heart_rate_tick)
        n = self.spec.ppg_samples_per_packet
        self.every(loop, n / self.spec.ppg_rate_hz, self._ppg_tick)

    def read(self, uuid: str) -> bytes:
        """Battery level is the only readable value."""
        if uuid == uuids.BATTERY_LEVEL:
            return bytes([self.spec.battery_pct])
        return super().read(uuid)

    def write(self, uuid: str, data: bytes) -> None:
        """PMD control point: start or stop the PPG stream, answered by an indication."""
        if uuid != pmd.PMD_CONTROL_POINT:
            super().write(uuid, data)
            return
        try:
            _, measurement, settings = pmd.parse_command(data)
        except DecodeError:
            self._ppg_streaming = False
            return
        if measurement != "ppg":
            status = _STATUS_NOT_SUPPORTED
        elif settings.get(0) != self.spec.ppg_rate_hz:
            status = _STATUS_INVALID_SAMPLE_RATE
        else:
            status = _STATUS_SUCCESS
            self._ppg_streaming = True
        self.notify(
            pmd.PMD_CONTROL_POINT, pmd.encode_control_point_response(2, measurement, status)
        )

    def on_link_closed(self) -> None:
        """A new connection must start the PMD stream again, as on a real Polar device."""
        self._ppg_streaming = False

    def _heart_rate_tick(self, k: int) -> None:
        t_s = (k + 1) * self.spec.heart_rate_interval_s
        bpm = round(self.heart.heart_rate_bpm(t_s))
        self.heart_rate.produced += 1
        every = self.spec.malformed_every
        if every and (k + 1) % every == 0:
            # flags announce a uint16 rate and RR intervals, one byte follows
            self.notify(uuids.HEART_RATE_MEASUREMENT, b"\x11\x40", malformed=True)
            return
        rr_1024 = round(self.heart.rr_interval_s(t_s) * 1024)
        payload = encode_heart_rate_measurement(
            HeartRateMeasurement(bpm, "detected", None, (rr_1024,))
        )
        if self.notify(uuids.HEART_RATE_MEASUREMENT, payload):
            self.heart_rate.sent += 1
            self.heart_rate.values_sent.append(bpm)
        else:
            self.heart_rate.lost_link_down += 1

    def _ppg_tick(self, k: int) -> None:
        n = self.spec.ppg_samples_per_packet
        rate = self.spec.ppg_rate_hz
        t_s = (np.arange(k * n, (k + 1) * n, dtype=np.float64) + 1.0) / rate
        wave = self.heart.pulse_wave(t_s)
        self.ppg.produced += n
        if not self._ppg_streaming:
            self.ppg.lost_link_down += n
            return
        noise = self.heart.noise(n * _PPG_CHANNELS, 150.0).reshape(n, _PPG_CHANNELS)
        gains = np.array([30000.0, 22000.0, 15000.0, 0.0])
        offsets = np.array([250000.0, 210000.0, 180000.0, 4000.0])
        samples = (offsets + np.outer(wave, gains) + noise).astype(np.int32)
        timestamp_ns = int((time.time() - pmd.POLAR_EPOCH_S) * 1e9)
        frame = pmd.PmdFrame("ppg", 0, timestamp_ns, samples)
        if self.notify(pmd.PMD_DATA, pmd.encode_pmd_data(frame)):
            self.ppg.sent += n
        else:
            self.ppg.lost_link_down += n
