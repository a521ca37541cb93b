"""Polar Measurement Data (PMD) control point commands and data frames.

Source: Polar BLE SDK, "Polar Measurement Data specification" and its parsers
(polarofficial/polar-ble-sdk, ``PmdDataFrame``, ``EcgData``, ``PpgData``, ``AccData``).

Data frame (notification on 0xFB005C82), little-endian::

    byte 0     measurement type (0 ECG, 1 PPG, 2 ACC)
    bytes 1-8  uint64 timestamp of the LAST sample, ns since 2000-01-01T00:00:00 UTC
    byte 9     frame type; bit 7 set = delta-compressed frame
    bytes 10-  samples, channel-interleaved

Raw (uncompressed) frame types implemented here:

    ECG type 0  1 channel  int24  (microvolts)
    PPG type 0  4 channels int24  (ppg0, ppg1, ppg2, ambient)
    ACC type 0  3 channels int8, type 1 int16, type 2 int24 (mG)

Control point (write and indication on 0xFB005C81): start is ``0x02, type, settings...`` where
each setting is ``setting_type u8, count u8, value u16`` (0 sample rate, 1 resolution,
4 channels); the response is ``0xF0, op code, type, status`` (0 = success).
Delta-compressed frames are not decoded yet: they raise ``DecodeError`` like any unknown type.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

import numpy as np

from drivers.errors import DecodeError

if TYPE_CHECKING:
    from numpy.typing import NDArray

PROFILE = "pmd_data"

PMD_SERVICE: Final = "fb005c80-02e7-f387-1cad-8acd2d8df0c8"
PMD_CONTROL_POINT: Final = "fb005c81-02e7-f387-1cad-8acd2d8df0c8"
PMD_DATA: Final = "fb005c82-02e7-f387-1cad-8acd2d8df0c8"

POLAR_EPOCH_S: Final = datetime(2000, 1, 1, tzinfo=UTC).timestamp()

MEASUREMENT_TYPES: Final = {0: "ecg", 1: "ppg", 2: "acc"}
MEASUREMENT_CODES: Final = {name: code for code, name in MEASUREMENT_TYPES.items()}

# (measurement, frame type) -> (channels, bytes per channel sample)
_RAW_LAYOUTS: Final = {
    ("ecg", 0): (1, 3),
    ("ppg", 0): (4, 3),
    ("acc", 0): (3, 1),
    ("acc", 1): (3, 2),
    ("acc", 2): (3, 3),
}

_HEADER = struct.Struct("<BQB")
_OP_START: Final = 0x02
_OP_STOP: Final = 0x03
_RESPONSE: Final = 0xF0
_SETTING_SAMPLE_RATE: Final = 0
_SETTING_RESOLUTION: Final = 1
_SETTING_CHANNELS: Final = 4


@dataclass(frozen=True, slots=True)
class PmdFrame:
    """One decoded PMD data frame."""

    measurement: str
    frame_type: int
    timestamp_ns: int
    samples: NDArray[np.int32]


@dataclass(frozen=True, slots=True)
class ControlPointResponse:
    """The device's answer to a control point command."""

    op_code: int
    measurement: str | None
    status: int

    @property
    def ok(self) -> bool:
        """Whether the device accepted the command (status 0)."""
        return self.status == 0


def decode_pmd_data(data: bytes | bytearray) -> PmdFrame:
    """Decode one raw PMD data frame.

    Raises:
        DecodeError: Unknown measurement or frame type, a delta frame, or a sample area that is
            empty or not a whole number of samples.
    """
    if len(data) < _HEADER.size:
        raise DecodeError(PROFILE, f"{len(data)} bytes is shorter than the 10-byte header")
    code, timestamp_ns, frame_type = _HEADER.unpack_from(data)
    measurement = MEASUREMENT_TYPES.get(code)
    if measurement is None:
        raise DecodeError(PROFILE, f"unknown measurement type {code}")
    layout = _RAW_LAYOUTS.get((measurement, frame_type))
    if layout is None:
        raise DecodeError(PROFILE, f"unsupported {measurement} frame type {frame_type:#04x}")
    channels, width = layout
    body = bytes(data[_HEADER.size :])
    sample_size = channels * width
    if not body or len(body) % sample_size:
        raise DecodeError(
            PROFILE, f"{len(body)} sample bytes is not a whole number of {sample_size}-byte samples"
        )
    values = _signed_le(np.frombuffer(body, dtype=np.uint8).reshape(-1, width))
    return PmdFrame(measurement, frame_type, timestamp_ns, values.reshape(-1, channels))


def encode_pmd_data(frame: PmdFrame) -> bytes:
    """Encode a raw frame the way a Polar device would send it."""
    channels, width = _RAW_LAYOUTS[(frame.measurement, frame.frame_type)]
    if frame.samples.ndim != 2 or frame.samples.shape[1] != channels:
        msg = f"{frame.measurement} frame type {frame.frame_type} needs {channels} channels"
        raise ValueError(msg)
    little = frame.samples.astype("<i4").reshape(-1, 1).view(np.uint8)[:, :width]
    header = _HEADER.pack(
        MEASUREMENT_CODES[frame.measurement], frame.timestamp_ns, frame.frame_type
    )
    return header + little.tobytes()


def start_command(
    measurement: str, sample_rate_hz: int, resolution_bits: int, channels: int
) -> bytes:
    """The control point command that starts a stream with its settings."""
    return bytes(
        [
            _OP_START,
            MEASUREMENT_CODES[measurement],
            *_setting(_SETTING_SAMPLE_RATE, sample_rate_hz),
            *_setting(_SETTING_RESOLUTION, resolution_bits),
            *_setting(_SETTING_CHANNELS, channels),
        ]
    )


def parse_start_command(data: bytes | bytearray) -> tuple[str, dict[int, int]]:
    """Read a start command back (the simulated device's side of the control point).

    Raises:
        DecodeError: Not a start command, or its settings are truncated.
    """
    if len(data) < 2 or data[0] != _OP_START or data[1] not in MEASUREMENT_TYPES:
        raise DecodeError("pmd_control_point", "not a start command")
    settings: dict[int, int] = {}
    pos = 2
    while pos < len(data):
        if len(data) < pos + 4 or data[pos + 1] != 1:
            raise DecodeError("pmd_control_point", "truncated setting")
        (settings[data[pos]],) = struct.unpack_from("<H", data, pos + 2)
        pos += 4
    return MEASUREMENT_TYPES[data[1]], settings


def encode_control_point_response(op_code: int, measurement: str, status: int) -> bytes:
    """A control point indication as the device sends it."""
    return bytes([_RESPONSE, op_code, MEASUREMENT_CODES[measurement], status])


def decode_control_point_response(data: bytes | bytearray) -> ControlPointResponse:
    """Decode a control point indication.

    Raises:
        DecodeError: Not a response frame, or too short.
    """
    if len(data) < 4 or data[0] != _RESPONSE:
        raise DecodeError("pmd_control_point", "not a control point response")
    return ControlPointResponse(data[1], MEASUREMENT_TYPES.get(data[2]), data[3])


def _setting(kind: int, value: int) -> list[int]:
    return [kind, 1, value & 0xFF, value >> 8]


def _signed_le(raw: NDArray[np.uint8]) -> NDArray[np.int32]:
    """Little-endian two's-complement integers of ``raw.shape[1]`` bytes, one per row."""
    width = raw.shape[1]
    weights = (1 << (8 * np.arange(width))).astype(np.int64)
    unsigned = raw.astype(np.int64) @ weights
    sign = np.int64(1 << (8 * width - 1))
    return ((unsigned ^ sign) - sign).astype(np.int32)
