"""A simulated Movesense sensor's side of the GATT SensorData Protocol.

Subscriptions by resource path; the data at each resource's rate, split into parts as the
firmware splits it. Any path the gateway reads can be subscribed (ECG at its seven rates,
IMU6/IMU9 at eight, HR, Temp); another answers 404, an ECG or IMU rate the firmware lacks 501.
A resource measures from its first subscription on; the sensor drops every subscription when
the link goes, as the firmware does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

import numpy as np

from drivers.errors import DecodeError
from drivers.movesense import gsp
from drivers.movesense.resources import (
    ECG_UV_PER_COUNT,
    Resource,
    encode_heart_rate,
    encode_samples,
    encode_temperature,
    parse_path,
)
from drivers.sim.peripheral import SimCharacteristic, SimService, StreamCounters

if TYPE_CHECKING:
    from collections.abc import Callable

    from numpy.typing import NDArray

    from drivers.sim.signals import HeartModel

ECG_SAMPLES: Final = 16  # a notification's ECG array (the firmware's ArraySize)
# the ground truth's counters: IMU data counts as its acc samples (its gyroscope and
# magnetometer samples come in the same notifications)
STREAMS: Final = ("ecg", "acc", "heart_rate", "temperature")
_NOT_FOUND: Final = 404
_NOT_IMPLEMENTED: Final = 501  # the firmware's answer to a rate it does not offer
_OK: Final = 200


_COUNTERS: Final = {
    "ecg": "ecg",
    "ecg_mv": "ecg",
    "imu6": "acc",
    "imu9": "acc",
    "hr": "heart_rate",
    "temp": "temperature",
}


def counters_of(resource: Resource) -> str:
    """The ground-truth counter a resource's units count in."""
    return _COUNTERS[resource.kind]


def samples_per_notification(resource: Resource) -> int:
    """Samples one notification carries (IMU: more at higher rates, up to 8)."""
    if resource.rate_hz is None:
        return 1
    if resource.kind in ("ecg", "ecg_mv"):
        return ECG_SAMPLES
    return max(1, min(8, resource.rate_hz // 13))


@dataclass(slots=True)
class GspServer:
    """The sensor's side of GSP, sending through its device's ``send`` and ``indicate``."""

    heart: HeartModel
    send: Callable[[str, bytes, StreamCounters, int], None]
    indicate: Callable[[str, bytes], None]
    every: Callable[[float, Callable[[int], None]], None]
    counters: dict[str, StreamCounters]
    subscribed: dict[int, str] = field(default_factory=dict)  # reference -> path
    _measuring: set[str] = field(default_factory=set)  # paths with a timer

    @staticmethod
    def service() -> SimService:
        """The GSP service: the command characteristic and the data characteristic."""
        return SimService(
            gsp.SERVICE,
            (
                SimCharacteristic(gsp.COMMAND, ("write",)),
                SimCharacteristic(gsp.DATA_CHARACTERISTIC, ("notify",)),
            ),
        )

    def command(self, data: bytes) -> None:
        """One write of the command characteristic (a bad one is ignored, as the firmware's)."""
        try:
            op, ref, path = gsp.decode_command(data)
        except DecodeError:
            return
        if op == gsp.HELLO:
            self.indicate(gsp.DATA_CHARACTERISTIC, bytes([gsp.RESULT, ref]) + b"Hello")
        elif op == gsp.UNSUBSCRIBE:
            self.subscribed.pop(ref, None)
        else:
            self.indicate(
                gsp.DATA_CHARACTERISTIC, gsp.encode_result(ref, self._subscribe(ref, path))
            )

    def link_closed(self) -> None:
        """The firmware drops every subscription when its central goes."""
        self.subscribed.clear()

    def _subscribe(self, ref: int, path: str) -> int:
        try:
            resource = parse_path(path)
        except ValueError:
            rate_refused = path.startswith(("/Meas/ECG/", "/Meas/IMU6/", "/Meas/IMU9/"))
            return _NOT_IMPLEMENTED if rate_refused else _NOT_FOUND
        self.subscribed[ref] = path
        if path not in self._measuring:
            self._measuring.add(path)
            n = samples_per_notification(resource)
            interval_s = n / resource.rate_hz if resource.rate_hz else 1.0
            self.every(interval_s, lambda k: self._tick(resource, n, interval_s, k))
        return _OK

    def _tick(self, resource: Resource, n: int, interval_s: float, k: int) -> None:
        counters = self.counters[counters_of(resource)]
        refs = [ref for ref, path in self.subscribed.items() if path == resource.path]
        if not refs:  # unsubscribed: the sensor stops sending it
            counters.produced += n
            counters.lost_link_down += n
            return
        t0 = k * interval_s  # the first sample's time, in seconds since the sensor started
        body = self._data(resource, n, t0)
        for ref in refs:
            packets = gsp.encode_data(ref, body)
            for i, packet in enumerate(packets):  # the units count with the last part
                self.send(
                    gsp.DATA_CHARACTERISTIC, packet, counters, n if i == len(packets) - 1 else 0
                )

    def _data(self, resource: Resource, n: int, t0: float) -> bytes:
        stamp = round(t0 * 1000) % 2**32
        if resource.kind == "hr":
            rr_ms = round(self.heart.rr_interval_s(t0) * 1000)
            return encode_heart_rate(float(self.heart.heart_rate_bpm(t0)), [rr_ms])
        if resource.kind == "temp":
            return encode_temperature(stamp, 273.15 + 33.5 + 0.1 * math.sin(t0 / 60.0))
        assert resource.rate_hz is not None
        t = t0 + np.arange(n, dtype=np.float64) / resource.rate_hz
        return encode_samples(resource, stamp, self._samples(resource, t))

    def _samples(self, resource: Resource, t: NDArray[np.float64]) -> NDArray[np.float64]:
        if resource.kind in ("ecg", "ecg_mv"):
            mv = self.heart.ecg_mv(t, 1) + self.heart.noise((len(t), 1), 0.008)
            return np.rint(mv * 1000.0 / ECG_UV_PER_COUNT) if resource.kind == "ecg" else mv
        at_rest = [0.0, 0.0, 9.81, 0.0, 0.0, 0.0, 22.0, -3.0, 41.0][: 3 * resource.vectors]
        return np.asarray(at_rest) + self.heart.noise((len(t), 3 * resource.vectors), 0.02)
