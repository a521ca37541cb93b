"""Typed frames the driver layer emits: one vital sign reading or one chunk of waveform samples."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray


def rounded_int32(values: NDArray[np.float64]) -> NDArray[np.int32]:
    """Physical values as a chunk's integer samples: rounded, clipped to ``int32``."""
    limit = float(np.iinfo(np.int32).max)
    return np.clip(np.rint(values), -limit, limit).astype(np.int32)


@dataclass(frozen=True, slots=True)
class VitalReading:
    """One measurement of one vital sign.

    Attributes:
        device_id: The configured id of the device that sent it.
        stream: What was measured (``heart_rate``, ``spo2``, ...).
        seq: Sequence number per device and stream, from 0 at daemon start.
        t0_s: When it was measured, UTC epoch seconds.
        values: The decoded fields, JSON-serialisable (e.g. ``heart_rate_bpm``,
            ``rr_intervals_ms``).
        backfilled: Fetched from the device's memory after a gap (its time is the device's
            timestamp), not received live.
        source_key: The device's own timestamp of the reading, where it has one: the same
            reading received live and fetched again is stored once.
        record_number: Where the device's records stand after this one (backfilled readings):
            its sequence number, or for records without one its device timestamp in seconds.
    """

    device_id: str
    stream: str
    seq: int
    t0_s: float
    values: dict[str, object]
    backfilled: bool = False
    source_key: str | None = None
    record_number: int | None = None


@dataclass(frozen=True, slots=True)
class WaveformChunk:
    """Consecutive samples of one stream at a nominal rate.

    Attributes:
        device_id: The configured id of the device that sent it.
        stream: The stream (``ppg``, ``ecg``, ``acc``).
        seq: Sequence number per device and stream, from 0 at daemon start.
        t0_s: Time of the first sample, UTC epoch seconds.
        sample_rate_hz: Nominal sample rate.
        samples: Shape ``(n_samples, n_channels)``.
    """

    device_id: str
    stream: str
    seq: int
    t0_s: float
    sample_rate_hz: float
    samples: NDArray[np.int32]


@dataclass(frozen=True, slots=True)
class GapMarker:
    """A stretch of a stream with no data, and why: data about missing data.

    Attributes:
        seq: Sequence number among this stream's gap markers.
        t0_s: End of the last data before the gap (UTC epoch seconds).
        t1_s: Start of the first data after it.
        reason: ``link_lost``, ``lost`` (notifications missing while connected), ``malformed``,
            ``silent`` (the stream stalled while the link stayed up), ``stopped`` (the device
            ended a PMD stream itself) or ``restart`` (from the stored data's end to the first
            data after the gateway started again).
        filled: The device's memory gave back what the gap lacked: this marker is sent again
            with ``filled`` set, once the records are in.
    """

    device_id: str
    stream: str
    seq: int
    t0_s: float
    t1_s: float
    reason: str
    filled: bool = False


Frame: TypeAlias = VitalReading | WaveformChunk | GapMarker
