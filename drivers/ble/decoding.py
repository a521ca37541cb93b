"""A notification's bytes decoded by the profile its characteristic names: a pure function.

``decode(uuid, data, pmd_streams, as_record=...)`` says what the bytes are (a vital sign's
values, a stored record, a PMD data frame, an answer of a control point, or nothing the
gateway uses) and raises ``DecodeError`` for bytes that break their profile. Placing the
result in time and in its stream is ``framing``'s job.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from drivers.ble.backfill import RECORDED, decode_record
from drivers.catalog import lookup
from drivers.gatt import infinitime, uuids
from drivers.polar import pmd, pmd_settings, ppi

if TYPE_CHECKING:
    from collections.abc import Mapping

# characteristic -> the vitals stream its readings belong to
VITAL_STREAMS: Final = {
    uuids.HEART_RATE_MEASUREMENT: "heart_rate",
    uuids.PLX_CONTINUOUS: "spo2",
    uuids.PLX_SPOT_CHECK: "spo2_spot",
    uuids.BLOOD_PRESSURE_MEASUREMENT: "blood_pressure",
    uuids.TEMPERATURE_MEASUREMENT: "temperature",
    uuids.BATTERY_LEVEL: "battery",
    infinitime.STEP_COUNT: "steps",
    infinitime.MOTION_VALUES: "motion",
}


@dataclass(frozen=True, slots=True)
class Vital:
    """A live reading of a vitals stream."""

    stream: str
    values: dict[str, object]


@dataclass(frozen=True, slots=True)
class Record:
    """A reading the device kept and gives back (RACP): its number where the profile has one."""

    stream: str
    number: int | None
    values: dict[str, object]


@dataclass(frozen=True, slots=True)
class Waveform:
    """A PMD data frame of a configured stream, with the settings it was started with."""

    frame: pmd.PmdFrame
    settings: pmd.StreamSettings


@dataclass(frozen=True, slots=True)
class RecordAnswer:
    """An indication of the Record Access Control Point (the backfill reads it)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class PmdAnswer:
    """The device's answer to a PMD control point command."""

    response: pmd.ControlPointResponse


@dataclass(frozen=True, slots=True)
class PmdStopped:
    """The device ended these PMD streams on its own (ONLINE_MEASUREMENT_STOPPED)."""

    measurements: tuple[str, ...]


Decoded = Vital | Record | Waveform | RecordAnswer | PmdAnswer | PmdStopped | None


def decode(
    uuid: str,
    data: bytes,
    pmd_streams: Mapping[str, pmd.StreamSettings],
    *,
    as_record: bool = False,
) -> Decoded:
    """What ``data`` from characteristic ``uuid`` says (None: nothing the gateway uses).

    ``as_record``: a record transfer runs on this characteristic (where records come on the
    live one, everything on it meanwhile is a record). A PMD frame of a stream not in
    ``pmd_streams`` is checked, then ignored.

    Raises:
        DecodeError: The bytes break the characteristic's profile.
    """
    if as_record or (uuid in RECORDED and uuid not in VITAL_STREAMS):
        number, values = decode_record(uuid, data)
        return Record(RECORDED[uuid].stream, number, values)
    stream = VITAL_STREAMS.get(uuid)
    if stream is not None:
        characteristic = lookup(uuid)
        assert characteristic is not None
        return Vital(stream, characteristic.decode_json(data))
    if uuid == uuids.RECORD_ACCESS_CONTROL_POINT:
        return RecordAnswer(data)
    if uuid == pmd.PMD_DATA:
        return _pmd_data(data, pmd_streams)
    if uuid == pmd.PMD_CONTROL_POINT:
        return _pmd_control(data)
    return None


def _pmd_control(data: bytes) -> PmdAnswer | PmdStopped | None:
    """A control point indication: an answer, or the device's word that it stopped streams."""
    if data[:1] == bytes([pmd_settings.FEATURE_READ]):
        # the feature read's own value: BlueZ hands a read of a characteristic whose
        # indications are on to its handler too
        return None
    stopped = pmd.decode_measurement_stopped(data)
    if stopped is not None:
        return PmdStopped(stopped)
    return PmdAnswer(pmd.decode_control_point_response(data))


def _pmd_data(
    data: bytes, pmd_streams: Mapping[str, pmd.StreamSettings]
) -> Vital | Waveform | None:
    """A PMD data frame: a configured stream's samples, or PPI intervals (a vitals stream)."""
    if data and data[0] == ppi.PPI_MEASUREMENT:
        _, intervals = ppi.decode_ppi_frame(data)
        values: dict[str, object] = {"intervals": [i.to_json() for i in intervals]}
        return Vital("ppi", values) if "ppi" in pmd_streams else None
    measurement = pmd.MEASUREMENT_TYPES.get(data[0]) if data else None
    settings = pmd_streams.get(measurement or "")
    frame = pmd.decode_pmd_data(
        data,
        channels=settings.channels if settings else None,
        resolution_bits=settings.resolution_bits if settings else None,
    )
    return Waveform(frame, settings) if settings is not None else None


def stream_of(uuid: str, data: bytes) -> str | None:
    """The stream a (malformed) notification was meant for, where its characteristic says."""
    recorded = RECORDED.get(uuid)
    stream = VITAL_STREAMS.get(uuid) or (recorded.stream if recorded else None)
    if stream is None and uuid == pmd.PMD_DATA and data:
        stream = pmd.MEASUREMENT_TYPES.get(data[0])
    return stream
