"""What a Polar device offers over PMD, and the offered settings nearest to config's.

Its measurements (the feature read) and each one's settings (GET_MEASUREMENT_SETTINGS).
Source: polar-ble-sdk's Android ``PmdMeasurementType.fromByteArray`` (the feature read: ``0F``,
then a bit per measurement in bytes 1 and 2), ``PmdSetting`` (a settings list: ``type u8,
count u8`` then ``count`` little-endian signed values of the type's size; the factor is a
float32's bits) and ``BlePMDClient`` (a start's answer carries the stream's factor; an answer
with ``more`` set continues in the next indication, its parameters after the 5-byte header).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Final

import numpy as np

from drivers.errors import DecodeError
from drivers.frames import rounded_int32
from drivers.polar import pmd

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from numpy.typing import NDArray

FEATURE_READ: Final = 0x0F

# (byte, bit) of the feature read -> measurement
_FEATURE_BITS: Final = {
    (1, 0x01): "ecg",
    (1, 0x02): "ppg",
    (1, 0x04): "acc",
    (1, 0x08): "ppi",
    (1, 0x20): "gyro",
    (1, 0x40): "mag",
    (1, 0x80): "skin_temp",
    (2, 0x02): "sdk_mode",
    (2, 0x04): "location",
    (2, 0x08): "pressure",
    (2, 0x10): "temperature",
    (2, 0x20): "offline_recording",
    (2, 0x40): "offline_hr",
}

# setting type -> (name, bytes per value); names are StreamSettings' fields where it has one
SETTING_TYPES: Final = {
    0: ("sample_rate_hz", 2),
    1: ("resolution_bits", 2),
    2: ("range", 2),
    3: ("range_milliunit", 4),
    4: ("channels", 1),
    5: ("factor", 4),
    6: ("security", 16),
}
_CODES: Final = {name: code for code, (name, _) in SETTING_TYPES.items()}

Offer = dict[str, tuple[float, ...]]


def decode_features(data: bytes | bytearray) -> tuple[str, ...]:
    """The measurements a device offers, from a read of its PMD control point.

    Raises:
        DecodeError: Not a feature read (it starts ``0F``).
    """
    if len(data) < 2 or data[0] != FEATURE_READ:
        raise DecodeError(
            pmd.CONTROL_POINT_PROFILE, "not a feature read (0F and at least one byte)"
        )
    padded = bytes(data[:3]).ljust(3, b"\0")  # an older device sends one byte of bits
    return tuple(name for (at, bit), name in _FEATURE_BITS.items() if padded[at] & bit)


def encode_features(measurements: Iterable[str]) -> bytes:
    """The feature read a device with ``measurements`` answers (the simulator's)."""
    out = bytearray([FEATURE_READ, 0, 0])
    wanted = set(measurements)
    for (at, bit), name in _FEATURE_BITS.items():
        if name in wanted:
            out[at] |= bit
    return bytes(out)


def decode_settings(data: bytes | bytearray) -> Offer:
    """A settings list: each setting's name and its values (the factor as a float).

    The security setting (a 16-byte key type) is skipped.

    Raises:
        DecodeError: An unknown setting type, or values cut short.
    """
    offer: Offer = {}
    pos = 0
    while pos < len(data):
        if pos + 2 > len(data):
            raise DecodeError(
                pmd.CONTROL_POINT_PROFILE, f"setting header cut short at offset {pos}"
            )
        kind, count = data[pos], data[pos + 1]
        if kind not in SETTING_TYPES:
            raise DecodeError(pmd.CONTROL_POINT_PROFILE, f"unknown setting type {kind}")
        name, size = SETTING_TYPES[kind]
        end = pos + 2 + count * size
        if end > len(data):
            raise DecodeError(pmd.CONTROL_POINT_PROFILE, f"{name}: {count} values need {end - pos}")
        raw = [bytes(data[at : at + size]) for at in range(pos + 2, end, size)]
        pos = end
        if name == "security":
            continue
        if name == "factor":
            offer[name] = tuple(struct.unpack("<f", r)[0] for r in raw)
        else:
            offer[name] = tuple(int.from_bytes(r, "little", signed=True) for r in raw)
    return offer


def encode_settings(offer: Mapping[str, Iterable[float]]) -> bytes:
    """A settings list as a device sends it (the simulator's; the inverse of the decoder)."""
    out = bytearray()
    for name, values in offer.items():
        kind = _CODES[name]
        size = SETTING_TYPES[kind][1]
        items = list(values)
        out += bytes([kind, len(items)])
        for value in items:
            if name == "factor":
                out += struct.pack("<f", value)
            else:
                out += int(value).to_bytes(size, "little", signed=True)
    return bytes(out)


@dataclass(frozen=True, slots=True)
class Choice:
    """The settings a stream starts with.

    ``changed``: what config asked that the device does not offer (name -> (asked, used)).
    """

    settings: pmd.StreamSettings
    changed: dict[str, tuple[int, int]]

    def describe(self) -> str:
        """``sample_rate_hz 250 -> 130, ...`` for the log."""
        return ", ".join(f"{name} {a} -> {b}" for name, (a, b) in self.changed.items())


def nearest(wanted: pmd.StreamSettings, offer: Offer) -> Choice:
    """The offered settings nearest to ``wanted`` (a tie goes to the larger value).

    A setting the device does not list is asked for as configured. A range config did not give
    is the largest offered (polar-ble-sdk's default, ``maxSettings``).
    """
    changed: dict[str, tuple[int, int]] = {}

    def pick(name: str, value: int) -> int:
        options = [int(v) for v in offer.get(name, ())]
        if not options or value in options:
            return value
        best = min(options, key=lambda o: (abs(o - value), -o))
        changed[name] = (value, best)
        return best

    ranges = [int(v) for v in offer.get("range", ())]
    if wanted.range_ is not None:
        range_: int | None = pick("range", wanted.range_)
    else:
        range_ = max(ranges) if ranges else None
    settings = replace(
        wanted,
        sample_rate_hz=pick("sample_rate_hz", wanted.sample_rate_hz),
        resolution_bits=pick("resolution_bits", wanted.resolution_bits),
        channels=pick("channels", wanted.channels),
        range_=range_,
    )
    return Choice(settings, changed)


# measurement -> what one unit of sample x factor is in the gateway's unit (polar-ble-sdk's
# units: ACC milli-G, gyroscope deg/s, magnetometer gauss; the gateway's: milli-G, millidegrees
# per second and nT, as for Movesense)
_TO_GATEWAY_UNITS: Final = {"acc": 1.0, "gyro": 1000.0, "mag": 100_000.0}


def physical(
    measurement: str, samples: NDArray[np.int32], factor: float, frame_type: int = 0
) -> NDArray[np.int32]:
    """Samples in the gateway's units: the factor applied (ACC, gyroscope, magnetometer).

    ECG (µV) and PPG (counts) are as sent. A magnetometer's frame type 1 is in milligauss,
    its fourth channel the calibration status (kept as sent).
    """
    scale = _TO_GATEWAY_UNITS.get(measurement)
    if scale is None or (scale == 1.0 and factor == 1.0):
        return samples
    if measurement == "mag" and frame_type & 0x7F == 1:
        scale /= 1000.0
    scaled = samples.astype(np.float64)
    scaled[:, :3] *= factor * scale
    return rounded_int32(scaled)


def with_factor(settings: pmd.StreamSettings, start_answer: bytes) -> pmd.StreamSettings:
    """The settings with the factor a start's answer gives (1.0 when it gives none).

    Raises:
        DecodeError: The answer's parameters are not a settings list.
    """
    factors = decode_settings(start_answer).get("factor", ())
    return replace(settings, factor=float(factors[0]) if factors else 1.0)


# PmdControlPointCommandClientToService
OP_NAMES: Final = {
    1: "get_measurement_settings",
    2: "request_measurement_start",
    3: "stop_measurement",
    4: "get_sdk_mode_measurement_settings",
    5: "get_measurement_status",
    6: "get_sdk_mode_status",
    7: "get_offline_recording_trigger_status",
    8: "set_offline_recording_trigger_mode",
    9: "set_offline_recording_trigger_settings",
}
_SETTINGS_OPS: Final = frozenset({pmd.OP_GET_SETTINGS, pmd.OP_START, 4})


def control_point_json(data: bytes | bytearray) -> dict[str, object]:
    """What ``wgw decode pmd_control_point`` prints.

    A response (op, measurement, status by name, more, the settings it lists), a feature read,
    or the device stopping streams.

    Raises:
        DecodeError: None of the three, or a settings list that breaks its layout.
    """
    if data[:1] == bytes([FEATURE_READ]):
        return {"features": list(decode_features(data))}
    stopped = pmd.decode_measurement_stopped(data)
    if stopped is not None:
        return {"measurement_stopped": list(stopped)}
    response = pmd.decode_control_point_response(data)
    out: dict[str, object] = {
        "op_code": response.op_code,
        "op": OP_NAMES.get(response.op_code, f"unknown_{response.op_code}"),
        "measurement": response.measurement,
        "status": response.status_name,
        "more": response.more,
    }
    if response.op_code in _SETTINGS_OPS and response.ok:
        out["settings"] = {k: list(v) for k, v in decode_settings(response.parameters).items()}
    return out
