"""Polar Measurement Data (PMD): control point commands and responses, and data frames.

Source: Polar BLE SDK (polarofficial/polar-ble-sdk), "Polar Measurement Data specification"
and its Android parsers ``PmdDataFrame``, ``EcgData``, ``PpgData``, ``AccData``, ``BlePMDClient``
(``parseDeltaFramesAll``), ``PmdControlPointResponse``, ``PmdSetting``.

Data frame (notification on 0xFB005C82), little-endian::

    byte 0     measurement type (0 ECG, 1 PPG, 2 ACC, 3 PPI, 5 gyroscope, 6 magnetometer)
    bytes 1-8  uint64 timestamp of the LAST sample, ns since 2000-01-01T00:00:00 UTC
    byte 9     frame type; bit 7 set = delta-compressed frame
    bytes 10-  samples

Raw frames, channel-interleaved signed integers::

    ECG type 0  1 channel  int24 (microvolts)
    PPG type 0  4 channels int24 (ppg0, ppg1, ppg2, ambient)
    ACC type 0  3 channels int8, type 1 int16, type 2 int24 (milli-g)

Gyroscope and magnetometer frames come delta-compressed only (``GyrData``, ``MagData``): type 0
is 3 channels of 16 bits (deg/s and gauss once the stream's factor is applied); magnetometer
type 1 adds a fourth channel, the calibration status (its axes in milligauss). Gyroscope type 1
(IEEE 754 floats) is not read.

Delta-compressed frames (frame type | 0x80; channels and resolution come from the stream's
settings): a reference sample of ``channels`` signed integers of ceil(resolution / 8) bytes, then
blocks of ``delta_bits u8, count u8`` followed by ceil(count * channels * delta_bits / 8) bytes of
bit-packed, LSB-first, two's-complement deltas, channel-interleaved; each delta sample is added
to the sample before it.

Control point (write, and indication on 0xFB005C81): a start is ``0x02, type`` followed by
settings, each ``setting_type u8, count u8, value``, where the value is 2 bytes for sample rate
(0), resolution (1) and range (2), 4 for range in milli-units (3) and factor (5), and 1 byte for
channels (4). A response is ``0xF0, op code, type, status, more u8, parameters``.
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
CONTROL_POINT_PROFILE = "pmd_control_point"

PMD_SERVICE: Final = "fb005c80-02e7-f387-1cad-8acd2d8df0c8"
PMD_CONTROL_POINT: Final = "fb005c81-02e7-f387-1cad-8acd2d8df0c8"
PMD_DATA: Final = "fb005c82-02e7-f387-1cad-8acd2d8df0c8"

POLAR_EPOCH_S: Final = datetime(2000, 1, 1, tzinfo=UTC).timestamp()

# ppi: drivers.polar.ppi; the feature read names more (drivers.polar.pmd_settings)
MEASUREMENT_TYPES: Final = {0: "ecg", 1: "ppg", 2: "acc", 3: "ppi", 5: "gyro", 6: "mag"}
MEASUREMENT_CODES: Final = {name: code for code, name in MEASUREMENT_TYPES.items()}
COMPRESSED: Final = 0x80

# (measurement, raw frame type) -> (channels, bytes per channel sample)
_RAW_LAYOUTS: Final = {
    ("ecg", 0): (1, 3),
    ("ppg", 0): (4, 3),
    ("acc", 0): (3, 1),
    ("acc", 1): (3, 2),
    ("acc", 2): (3, 3),
}

OP_GET_SETTINGS: Final = 0x01
OP_START: Final = 0x02
OP_STOP: Final = 0x03
_RESPONSE: Final = 0xF0
_ONLINE_MEASUREMENT_STOPPED: Final = 0x01  # the device-initiated notification

SETTING_SAMPLE_RATE: Final = 0
SETTING_RESOLUTION: Final = 1
SETTING_RANGE: Final = 2
SETTING_RANGE_MILLIUNIT: Final = 3
SETTING_CHANNELS: Final = 4
SETTING_FACTOR: Final = 5
_SETTING_SIZES: Final = {0: 2, 1: 2, 2: 2, 3: 4, 4: 1, 5: 4}

# PmdControlPointResponse.PmdControlPointResponseCode
STATUS_NAMES: Final = (
    "success",
    "invalid_op_code",
    "invalid_measurement_type",
    "not_supported",
    "invalid_length",
    "invalid_parameter",
    "already_in_state",
    "invalid_resolution",
    "invalid_sample_rate",
    "invalid_range",
    "invalid_mtu",
    "invalid_number_of_channels",
    "invalid_state",
    "device_in_charger",
    "disk_full",
)
STATUS_ALREADY_IN_STATE: Final = 6


@dataclass(frozen=True, slots=True)
class PmdFrame:
    """One decoded PMD data frame; ``samples`` has shape ``(n_samples, n_channels)``."""

    measurement: str
    frame_type: int
    timestamp_ns: int
    samples: NDArray[np.int32]

    @property
    def compressed(self) -> bool:
        """Whether the frame came delta-compressed."""
        return bool(self.frame_type & COMPRESSED)

    @property
    def last_sample_utc_s(self) -> float:
        """The device's time of the last sample, UTC epoch seconds."""
        return POLAR_EPOCH_S + self.timestamp_ns / 1e9

    def to_json(self) -> dict[str, object]:
        """The JSON ``wgw decode`` prints."""
        return {
            "measurement": self.measurement,
            "frame_type": self.frame_type,
            "timestamp_ns": self.timestamp_ns,
            "samples": self.samples.tolist(),
        }


@dataclass(frozen=True, slots=True)
class StreamSettings:
    """What a start command asks for; compressed frames cannot be read without it."""

    measurement: str
    sample_rate_hz: int
    resolution_bits: int
    channels: int
    range_: int | None = None
    factor: float = 1.0  # physical value = sample * factor (the device's start answer says)


@dataclass(frozen=True, slots=True)
class ControlPointResponse:
    """The device's answer to a control point command."""

    op_code: int
    measurement: str | None
    status: int
    more: bool = False
    parameters: bytes = b""

    @property
    def ok(self) -> bool:
        """Whether the device accepted the command (status 0)."""
        return self.status == 0

    @property
    def status_name(self) -> str:
        """The status as the Polar SDK names it (lower case)."""
        if self.status < len(STATUS_NAMES):
            return STATUS_NAMES[self.status]
        return f"unknown_{self.status}"


def decode_pmd_data(
    data: bytes | bytearray, *, channels: int | None = None, resolution_bits: int | None = None
) -> PmdFrame:
    """Decode one PMD data frame.

    Args:
        data: The notification.
        channels: The stream's channel count; needed for delta-compressed frames only.
        resolution_bits: The stream's resolution; needed for delta-compressed frames only.

    Raises:
        DecodeError: Unknown measurement or frame type, a compressed frame without settings,
            or a sample area that is empty, ragged or truncated.
    """
    if len(data) < _HEADER.size:
        raise DecodeError(PROFILE, f"{len(data)} bytes is shorter than the 10-byte header")
    code, timestamp_ns, frame_type = _HEADER.unpack_from(data)
    measurement = MEASUREMENT_TYPES.get(code)
    if measurement is None:
        raise DecodeError(PROFILE, f"unknown measurement type {code}")
    if measurement == "ppi":
        raise DecodeError(PROFILE, "a PPI frame holds intervals, not samples (drivers.polar.ppi)")
    body = bytes(data[_HEADER.size :])
    if not body:
        raise DecodeError(PROFILE, "no samples after the header")
    if frame_type & COMPRESSED:
        if measurement == "gyro" and frame_type & ~COMPRESSED == 1:
            raise DecodeError(PROFILE, "gyroscope frame type 1 (floats) is not read")
        if channels is None or resolution_bits is None:
            raise DecodeError(
                PROFILE, "delta-compressed frame needs the stream's channels and resolution"
            )
        samples = _decode_delta(body, channels, resolution_bits)
    else:
        samples = _decode_raw(body, measurement, frame_type)
    return PmdFrame(measurement, frame_type, timestamp_ns, samples)


_HEADER = struct.Struct("<BQB")


def _decode_raw(body: bytes, measurement: str, frame_type: int) -> NDArray[np.int32]:
    layout = _RAW_LAYOUTS.get((measurement, frame_type))
    if layout is None:
        raise DecodeError(PROFILE, f"unsupported {measurement} frame type {frame_type:#04x}")
    channels, width = layout
    sample_size = channels * width
    if len(body) % sample_size:
        raise DecodeError(
            PROFILE, f"{len(body)} sample bytes is not a whole number of {sample_size}-byte samples"
        )
    values = _signed_le(np.frombuffer(body, dtype=np.uint8).reshape(-1, width))
    return values.reshape(-1, channels)


def _decode_delta(body: bytes, channels: int, resolution_bits: int) -> NDArray[np.int32]:
    if not (1 <= channels <= 32 and 1 <= resolution_bits <= 32):
        raise DecodeError(
            PROFILE, f"impossible settings: {channels} channels, {resolution_bits} bits"
        )
    width = (resolution_bits + 7) // 8
    ref_size = channels * width
    if len(body) < ref_size:
        raise DecodeError(PROFILE, f"reference sample needs {ref_size} bytes, {len(body)} left")
    raw = np.frombuffer(body[:ref_size], dtype=np.uint8).reshape(-1, width).astype(np.int64)
    unsigned_ref = (raw @ (np.int64(1) << (8 * np.arange(width, dtype=np.int64)))) & (
        (np.int64(1) << resolution_bits) - 1
    )
    # Polar sign-extends the reference at the stream's resolution, not at the byte width.
    ref_sign = np.int64(1) << (resolution_bits - 1)
    blocks = [((unsigned_ref ^ ref_sign) - ref_sign).reshape(1, channels)]
    pos = ref_size
    while pos < len(body):
        if pos + 2 > len(body):
            raise DecodeError(PROFILE, "truncated delta block header")
        delta_bits, count = body[pos], body[pos + 1]
        pos += 2
        if not 1 <= delta_bits <= 32:
            raise DecodeError(PROFILE, f"delta width {delta_bits} bits is not 1-32")
        n_bits = delta_bits * count * channels
        size = (n_bits + 7) // 8
        if pos + size > len(body):
            raise DecodeError(PROFILE, f"delta block of {count} samples needs {size} bytes")
        bits = np.unpackbits(
            np.frombuffer(body[pos : pos + size], dtype=np.uint8), bitorder="little"
        )
        fields = bits[:n_bits].reshape(-1, delta_bits).astype(np.int64)
        unsigned = fields @ (np.int64(1) << np.arange(delta_bits, dtype=np.int64))
        sign = np.int64(1) << (delta_bits - 1)
        blocks.append(((unsigned ^ sign) - sign).reshape(-1, channels))
        pos += size
    stacked = np.concatenate(blocks)
    return np.cumsum(stacked, axis=0).astype(np.int32)


def encode_pmd_data(frame: PmdFrame, *, resolution_bits: int | None = None) -> bytes:
    """Encode a frame the way a Polar device sends it (raw, or delta-compressed if flagged).

    A compressed frame is written as one delta block, with the narrowest width that holds
    every delta.
    """
    header = _HEADER.pack(
        MEASUREMENT_CODES[frame.measurement], frame.timestamp_ns, frame.frame_type
    )
    samples = frame.samples.astype(np.int64)
    if not frame.compressed:
        channels, width = _RAW_LAYOUTS[(frame.measurement, frame.frame_type)]
        if samples.ndim != 2 or samples.shape[1] != channels:
            msg = f"{frame.measurement} frame type {frame.frame_type} needs {channels} channels"
            raise ValueError(msg)
        return header + _pack_le(samples.reshape(-1), width)
    if resolution_bits is None:
        msg = "a compressed frame needs resolution_bits"
        raise ValueError(msg)
    width = (resolution_bits + 7) // 8
    out = header + _pack_le(samples[0], width)
    deltas = np.diff(samples, axis=0)
    for start in range(0, len(deltas), 255):
        block = deltas[start : start + 255]
        delta_bits = max(1, *(int(v).bit_length() + 1 for v in block.reshape(-1)))
        unsigned = block.reshape(-1) & ((1 << delta_bits) - 1)
        bits = ((unsigned[:, None] >> np.arange(delta_bits)) & 1).astype(np.uint8).reshape(-1)
        out += bytes([delta_bits, len(block)]) + np.packbits(bits, bitorder="little").tobytes()
    return out


def smallest_frame_bytes(settings: StreamSettings) -> int:
    """The shortest data frame a stream can send: its header and one sample of every channel.

    A notification carries at most the ATT MTU less 3 bytes; a device cannot split a frame
    across notifications, so a stream whose one-sample frame is longer cannot be carried.
    """
    if settings.measurement == "ppi":
        return _HEADER.size + 6  # one interval
    return _HEADER.size + settings.channels * ((settings.resolution_bits + 7) // 8)


def start_command(settings: StreamSettings) -> bytes:
    """The control point command that starts a stream with its settings (PPI takes none)."""
    body = bytearray([OP_START, MEASUREMENT_CODES[settings.measurement]])
    if settings.measurement == "ppi":
        return bytes(body)
    body += _setting(SETTING_SAMPLE_RATE, settings.sample_rate_hz)
    body += _setting(SETTING_RESOLUTION, settings.resolution_bits)
    if settings.range_ is not None:
        body += _setting(SETTING_RANGE, settings.range_)
    body += _setting(SETTING_CHANNELS, settings.channels)
    return bytes(body)


def stop_command(measurement: str) -> bytes:
    """The control point command that stops a stream."""
    return bytes([OP_STOP, MEASUREMENT_CODES[measurement]])


def parse_command(data: bytes | bytearray) -> tuple[int, str, dict[int, int]]:
    """Read a control point command (the simulated device's side): op, measurement, settings.

    Raises:
        DecodeError: Unknown op code or measurement, or truncated settings.
    """
    if len(data) < 2 or data[0] not in (OP_GET_SETTINGS, OP_START, OP_STOP):
        raise DecodeError(CONTROL_POINT_PROFILE, "not a control point command")
    if data[1] not in MEASUREMENT_TYPES:
        raise DecodeError(CONTROL_POINT_PROFILE, f"unknown measurement type {data[1]}")
    settings: dict[int, int] = {}
    pos = 2
    while pos < len(data):
        if pos + 2 > len(data) or data[pos] not in _SETTING_SIZES:
            raise DecodeError(CONTROL_POINT_PROFILE, f"bad setting at offset {pos}")
        kind, count = data[pos], data[pos + 1]
        size = _SETTING_SIZES[kind]
        if count != 1 or pos + 2 + size > len(data):
            raise DecodeError(CONTROL_POINT_PROFILE, f"truncated setting {kind}")
        settings[kind] = int.from_bytes(data[pos + 2 : pos + 2 + size], "little")
        pos += 2 + size
    return data[0], MEASUREMENT_TYPES[data[1]], settings


def encode_control_point_response(
    op_code: int, measurement: str, status: int, parameters: bytes = b""
) -> bytes:
    """A control point indication as the device sends it."""
    return bytes([_RESPONSE, op_code, MEASUREMENT_CODES[measurement], status, 0]) + parameters


def decode_measurement_stopped(data: bytes | bytearray) -> tuple[str, ...] | None:
    """The streams a device-initiated ONLINE_MEASUREMENT_STOPPED (``01`` and their types) names.

    None: not that notification (a response starts ``F0``). polar-ble-sdk's
    ``PmdControlPointCommandServiceToClient``: the device ends streams on its own (charger,
    battery, a mode change).

    Raises:
        DecodeError: It names no stream, or a type that does not exist.
    """
    if not data or data[0] != _ONLINE_MEASUREMENT_STOPPED:
        return None
    if len(data) < 2:
        raise DecodeError(CONTROL_POINT_PROFILE, "measurement stopped names no measurement")
    unknown = [code for code in data[1:] if code & 0x3F not in MEASUREMENT_TYPES]
    if unknown:
        raise DecodeError(CONTROL_POINT_PROFILE, f"measurement stopped: unknown type {unknown[0]}")
    return tuple(MEASUREMENT_TYPES[code & 0x3F] for code in data[1:])


def encode_measurement_stopped(measurements: tuple[str, ...]) -> bytes:
    """The notification a device sends when it ends ``measurements`` itself (the simulator's)."""
    return bytes([_ONLINE_MEASUREMENT_STOPPED, *(MEASUREMENT_CODES[m] for m in measurements)])


def decode_control_point_response(data: bytes | bytearray) -> ControlPointResponse:
    """Decode a control point indication.

    Raises:
        DecodeError: Not a response frame, or too short.
    """
    if len(data) < 4 or data[0] != _RESPONSE:
        raise DecodeError(CONTROL_POINT_PROFILE, "not a control point response")
    ok = data[3] == 0
    return ControlPointResponse(
        op_code=data[1],
        measurement=MEASUREMENT_TYPES.get(data[2]),
        status=data[3],
        more=ok and len(data) > 4 and data[4] != 0,
        parameters=bytes(data[5:]) if ok else b"",
    )


def _setting(kind: int, value: int) -> bytes:
    return bytes([kind, 1]) + value.to_bytes(_SETTING_SIZES[kind], "little")


def _pack_le(values: NDArray[np.int64], width: int) -> bytes:
    little = values.astype("<i8").reshape(-1, 1).view(np.uint8)[:, :width]
    return little.tobytes()


def _signed_le(raw: NDArray[np.uint8]) -> NDArray[np.int32]:
    """Little-endian two's-complement integers of ``raw.shape[1]`` bytes, one per row."""
    width = raw.shape[1]
    weights = (np.int64(1) << (8 * np.arange(width, dtype=np.int64))).astype(np.int64)
    unsigned = raw.astype(np.int64) @ weights
    sign = np.int64(1) << (8 * width - 1)
    signed: NDArray[np.int32] = ((unsigned ^ sign) - sign).astype(np.int32)
    return signed
