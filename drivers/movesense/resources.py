"""The data of the Movesense resources a GSP subscription carries; the simulator's encoders.

As the firmware defines them (movesense-device-lib, ``MovesenseCoreLib/resources/
movesense-api/meas/{ecg,imu,hr,temp}.yaml`` and ``types.yaml``), serialised little-endian in
the order of their fields, arrays without a count (their length is what the packet has left):

=========================  ===================================================================
``/Meas/ECG/{rate}``       Timestamp ``uint32`` ms, Samples ``int32[]`` (no unit in the
                           definition; Movesense's own Python client scales 0.38 µV a count)
``/Meas/ECG/{rate}/mV``    Timestamp ``uint32`` ms, Samples ``float32[]`` in mV
``/Meas/IMU6/{rate}``      Timestamp ``uint32`` ms, ArrayAcc ``float32[3][n]`` m/s²,
                           ArrayGyro ``float32[3][n]`` deg/s
``/Meas/IMU9/{rate}``      the same, then ArrayMagn ``float32[3][n]`` (µT, as its ranges say)
``/Meas/HR``               average ``float32`` bpm (0: no valid rate), rrData ``uint16[]`` ms
``/Meas/Temp``             Timestamp ``uint32`` ms, Measurement ``float32`` kelvin
=========================  ===================================================================

Timestamps are the sensor's own milliseconds since it started (the first sample's), wrapping
at 2^32. ECG rates: 125, 128, 200, 250, 256, 500, 512 Hz; IMU: 13 to 1666 Hz.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

import numpy as np

from drivers.errors import DecodeError
from drivers.movesense.gsp import PROFILE

if TYPE_CHECKING:
    from numpy.typing import NDArray

ECG_RATES: Final = (125, 128, 200, 250, 256, 500, 512)
IMU_RATES: Final = (13, 26, 52, 104, 208, 416, 833, 1666)
ECG_UV_PER_COUNT: Final = 0.38  # the integer ECG path, as Movesense's Python client scales it

Kind = Literal["ecg", "ecg_mv", "imu6", "imu9", "hr", "temp"]
_PATH: Final = re.compile(
    r"/Meas/(?:(?P<ecg>ECG)/(?P<ecg_rate>\d+)(?P<mv>/mV)?|(?P<imu>IMU[69])/(?P<imu_rate>\d+)"
    r"|(?P<hr>HR)|(?P<temp>Temp))"
)
_STAMP = struct.Struct("<I")
_HR = struct.Struct("<f")
_TEMP = struct.Struct("<If")


@dataclass(frozen=True, slots=True)
class Resource:
    """A resource the gateway reads, from its path."""

    path: str
    kind: Kind
    rate_hz: int | None = None  # waveforms'

    @property
    def vectors(self) -> int:
        """3-axis vectors per IMU sample (acc, gyro, and magnetometer on IMU9)."""
        return {"imu6": 2, "imu9": 3}.get(self.kind, 0)


def parse_path(path: str) -> Resource:
    """The resource a path names.

    Raises:
        ValueError: A path this gateway does not read, or a rate the firmware does not offer.
    """
    m = _PATH.fullmatch(path)
    if m is None:
        msg = (
            f"{path!r} is not /Meas/ECG/{{rate}}[/mV], /Meas/IMU6/{{rate}}, /Meas/IMU9/{{rate}},"
            " /Meas/HR or /Meas/Temp"
        )
        raise ValueError(msg)
    if m["ecg"]:
        rate = int(m["ecg_rate"])
        if rate not in ECG_RATES:
            msg = f"ECG at {rate} Hz: the firmware offers {', '.join(map(str, ECG_RATES))}"
            raise ValueError(msg)
        return Resource(path, "ecg_mv" if m["mv"] else "ecg", rate)
    if m["imu"]:
        rate = int(m["imu_rate"])
        if rate not in IMU_RATES:
            msg = f"IMU at {rate} Hz: the firmware offers {', '.join(map(str, IMU_RATES))}"
            raise ValueError(msg)
        return Resource(path, "imu6" if m["imu"] == "IMU6" else "imu9", rate)
    return Resource(path, "hr" if m["hr"] else "temp")


@dataclass(frozen=True, slots=True)
class ResourceData:
    """One notification's data: a waveform's samples, or a reading's values.

    ``samples`` has shape ``(n, channels)``: ECG one channel (counts, or mV on the mV path);
    IMU6 acc x, y, z then gyro x, y, z; IMU9 then magnetometer x, y, z.
    """

    resource: Resource
    timestamp_ms: int | None
    samples: NDArray[np.float64] | None = None
    values: dict[str, object] | None = None

    def to_json(self) -> dict[str, object]:
        """What ``wgw decode movesense_data`` prints."""
        out: dict[str, object] = {"path": self.resource.path, "timestamp_ms": self.timestamp_ms}
        if self.samples is not None:
            out["samples"] = self.samples.tolist()
        if self.values is not None:
            out.update(self.values)
        return out


def decode_data(resource: Resource, body: bytes | bytearray) -> ResourceData:
    """Decode a subscription's data (put together from its packets).

    Raises:
        DecodeError: The bytes do not fit the resource's layout.
    """
    if resource.kind == "hr":
        return _heart_rate(resource, bytes(body))
    if resource.kind == "temp":
        return _temperature(resource, bytes(body))
    if len(body) < _STAMP.size:
        raise DecodeError(PROFILE, f"{resource.path}: no timestamp")
    (stamp,) = _STAMP.unpack_from(body)
    rest = bytes(body[_STAMP.size :])
    per_sample = 4 * (3 * resource.vectors if resource.vectors else 1)
    if not rest or len(rest) % per_sample:
        raise DecodeError(
            PROFILE, f"{resource.path}: {len(rest)} bytes is not whole {per_sample}-byte samples"
        )
    if resource.kind == "ecg":
        return ResourceData(resource, stamp, np.frombuffer(rest, "<i4").astype(float)[:, None])
    values = np.frombuffer(rest, dtype="<f4").astype(np.float64)
    if not np.isfinite(values).all():
        raise DecodeError(PROFILE, f"{resource.path}: a sample is not a number")
    if resource.kind == "ecg_mv":
        return ResourceData(resource, stamp, values[:, None])
    k = resource.vectors  # arrays one after the other: [acc n x 3][gyro n x 3]([magn n x 3])
    samples = values.reshape(k, -1, 3).transpose(1, 0, 2).reshape(-1, 3 * k)
    return ResourceData(resource, stamp, samples)


def _heart_rate(resource: Resource, body: bytes) -> ResourceData:
    if len(body) < _HR.size or (len(body) - _HR.size) % 2:
        raise DecodeError(PROFILE, f"/Meas/HR: {len(body)} bytes is not a float and uint16s")
    (average,) = _HR.unpack_from(body)
    if not np.isfinite(average) or not 0.0 <= average <= 250.0:
        raise DecodeError(PROFILE, f"/Meas/HR: average {average} bpm is out of 0-250")
    rr = np.frombuffer(body[_HR.size :], dtype="<u2").tolist()
    return ResourceData(resource, None, values={"average_bpm": average, "rr_ms": rr})


def _temperature(resource: Resource, body: bytes) -> ResourceData:
    if len(body) != _TEMP.size:
        raise DecodeError(PROFILE, f"/Meas/Temp: {len(body)} bytes, not 8")
    stamp, kelvin = _TEMP.unpack(body)
    if not np.isfinite(kelvin) or not 0.0 < kelvin < 400.0:
        raise DecodeError(PROFILE, f"/Meas/Temp: {kelvin} K is not a temperature")
    return ResourceData(resource, stamp, values={"kelvin": kelvin})


def encode_heart_rate(average_bpm: float, rr_ms: list[int]) -> bytes:
    """``/Meas/HR`` data as the sensor serialises it."""
    return _HR.pack(average_bpm) + np.asarray(rr_ms, dtype="<u2").tobytes()


def encode_temperature(timestamp_ms: int, kelvin: float) -> bytes:
    """``/Meas/Temp`` data as the sensor serialises it."""
    return _TEMP.pack(timestamp_ms, kelvin)


def encode_samples(resource: Resource, timestamp_ms: int, samples: NDArray[np.float64]) -> bytes:
    """A waveform resource's data as the sensor serialises it (``samples`` as decoded)."""
    head = _STAMP.pack(timestamp_ms)
    if resource.kind == "ecg":
        return head + samples.reshape(-1).astype("<i4").tobytes()
    if resource.kind == "ecg_mv":
        return head + samples.reshape(-1).astype("<f4").tobytes()
    k = resource.vectors
    arrays = samples.reshape(-1, k, 3).transpose(1, 0, 2)
    return head + arrays.reshape(-1).astype("<f4").tobytes()
