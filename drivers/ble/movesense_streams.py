"""A Movesense sensor's configured resources over GSP, turned into the gateway's streams.

Subscribed at each connect; their packets put back together. Streams: ``/Meas/ECG/...`` ->
``ecg`` (µV, as Polar's); ``/Meas/IMU6|9/...`` -> ``acc`` (milli-G, as Polar's), ``gyro``
(millidegrees/s) and ``mag`` (nT); ``/Meas/HR`` -> ``heart_rate`` (the standard profile's
fields); ``/Meas/Temp`` -> ``temperature`` (degrees C). Samples are stored as integers, so the
sensor's floats are kept to these units' resolution.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from drivers.ble.decoding import Vital
from drivers.errors import DecodeError
from drivers.frames import rounded_int32
from drivers.movesense import gsp
from drivers.movesense.resources import (
    ECG_UV_PER_COUNT,
    Resource,
    ResourceData,
    decode_data,
    parse_path,
)

if TYPE_CHECKING:
    import logging

    import numpy as np
    from bleak import BleakClient
    from bleak.backends.characteristic import BleakGATTCharacteristic
    from numpy.typing import NDArray

STANDARD_GRAVITY: Final = 9.80665  # m/s² in one G
ZERO_CELSIUS_K: Final = 273.15
_IMU_STREAMS: Final = (("acc", 1000.0 / STANDARD_GRAVITY), ("gyro", 1000.0), ("mag", 1000.0))


@dataclass(frozen=True, slots=True)
class Samples:
    """Consecutive samples of one stream; the sensor's time of the first, in seconds."""

    stream: str
    samples: NDArray[np.int32]
    rate_hz: float
    device_first_s: float


def streams_of(resource: Resource) -> tuple[str, ...]:
    """The gateway streams a resource's data becomes."""
    if resource.kind in ("ecg", "ecg_mv"):
        return ("ecg",)
    if resource.kind == "hr":
        return ("heart_rate",)
    if resource.kind == "temp":
        return ("temperature",)
    return tuple(name for name, _ in _IMU_STREAMS[: resource.vectors])


class MovesenseStreams:
    """One device's configured Movesense resources (references 1, 2, ... in config order)."""

    def __init__(
        self, device_id: str, paths: tuple[str, ...], log: logging.LoggerAdapter[logging.Logger]
    ) -> None:
        self.resources = {ref: parse_path(path) for ref, path in enumerate(paths, start=1)}
        self.not_started: dict[str, str] = {}  # path -> why (the sensor's status)
        self._device_id = device_id
        self._log = log
        self._reassembly = gsp.Reassembly()

    @property
    def broken(self) -> int:
        """Data that lost one of its packets (dropped, counted)."""
        return self._reassembly.broken

    def feeds(self, stream: str) -> bool:
        """Whether a configured resource feeds ``stream``."""
        return any(stream in streams_of(r) for r in self.resources.values())

    def rates(self) -> dict[str, int]:
        """Each waveform stream's rate."""
        return {
            stream: r.rate_hz
            for r in self.resources.values()
            if r.rate_hz is not None
            for stream in streams_of(r)
        }

    async def subscribe(self, client: BleakClient, command: BleakGATTCharacteristic) -> None:
        """Subscribe every configured resource (a new link starts with none)."""
        self._reassembly = gsp.Reassembly()
        for ref, resource in self.resources.items():
            await client.write_gatt_char(
                command, gsp.encode_command(gsp.SUBSCRIBE, ref, resource.path), response=True
            )

    async def resubscribe(
        self, client: BleakClient, command: BleakGATTCharacteristic, stream: str
    ) -> None:
        """Subscribe again the resources that feed ``stream`` (the watchdog found it silent)."""
        for ref, resource in self.resources.items():
            if stream in streams_of(resource):
                unsubscribe = gsp.encode_command(gsp.UNSUBSCRIBE, ref)
                await client.write_gatt_char(command, unsubscribe, response=True)
                subscribe = gsp.encode_command(gsp.SUBSCRIBE, ref, resource.path)
                await client.write_gatt_char(command, subscribe, response=True)

    def decode(self, data: bytes) -> list[Samples | Vital]:
        """What one notification of the data characteristic holds, once its data is whole.

        Raises:
            DecodeError: The packet or its data breaks the protocol, or names a reference
                nothing was subscribed with.
        """
        packet = gsp.decode_packet(data)
        resource = self.resources.get(packet.reference)
        if resource is None:
            raise DecodeError(gsp.PROFILE, f"reference {packet.reference} was not subscribed")
        if packet.kind == gsp.RESULT:
            self._result(resource, packet.status())
            return []
        body = self._reassembly.add(packet)
        if body is None:
            return []
        return _converted(decode_data(resource, body))

    def _result(self, resource: Resource, status: int) -> None:
        if status < 300:  # HTTP: 2xx is success
            if self.not_started.pop(resource.path, None) is not None:
                self._log.info("%s: %s subscribed", self._device_id, resource.path)
            return
        reason = f"the sensor answered {status}" + (
            " (a rate it does not offer)" if status == 501 else ""
        )
        if self.not_started.get(resource.path) != reason:
            self._log.error(
                "%s: Movesense %s not subscribed: %s", self._device_id, resource.path, reason
            )
        self.not_started[resource.path] = reason


def _converted(data: ResourceData) -> list[Samples | Vital]:
    """A resource's data in the gateway's streams and units."""
    r = data.resource
    if r.kind == "hr":
        assert data.values is not None
        average = data.values["average_bpm"]
        assert isinstance(average, float)
        values: dict[str, object] = {
            "heart_rate_bpm": round(average) if average > 0 else None,  # 0: no valid rate
            "sensor_contact": None,
            "energy_expended_kj": None,
            "rr_intervals_ms": data.values["rr_ms"],
        }
        return [Vital("heart_rate", values)]
    if r.kind == "temp":
        assert data.values is not None
        kelvin = data.values["kelvin"]
        assert isinstance(kelvin, float)
        celsius = round(kelvin - ZERO_CELSIUS_K, 2)
        return [
            Vital(
                "temperature",
                {"temperature": celsius, "unit": "C", "timestamp": None, "temperature_type": None},
            )
        ]
    assert data.samples is not None
    assert data.timestamp_ms is not None
    assert r.rate_hz is not None
    first_s = data.timestamp_ms / 1000.0
    if r.kind in ("ecg", "ecg_mv"):
        scale = ECG_UV_PER_COUNT if r.kind == "ecg" else 1000.0
        return [Samples("ecg", rounded_int32(data.samples * scale), r.rate_hz, first_s)]
    return [
        Samples(name, rounded_int32(data.samples[:, 3 * i : 3 * i + 3] * scale), r.rate_hz, first_s)
        for i, (name, scale) in enumerate(_IMU_STREAMS[: r.vectors])
    ]
