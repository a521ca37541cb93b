"""Blood Pressure Record (0x2B36): a stored measurement, as a record-keeping cuff sends it back.

Per the Blood Pressure Service 1.1 and the GATT Specification Supplement: segmentation header
u8 (bit 0 first segment, bit 1 last segment, bits 2-7 a rolling segment counter), sequence
number u16 (from 0, wrapping after 65535), the UUID u16 of the characteristic it holds (0x2A35,
Blood Pressure Measurement), that characteristic's value, and an E2E-CRC u16 only when the
cuff's Blood Pressure Feature says so. Records are sent in answer to the Record Access Control
Point (``drivers.gatt.racp``).

This collector takes records whole in one message and without the E2E-CRC, which is what a
record of one measurement at the usual MTU is; a segmented record or one with a CRC is refused
(counted and dropped like any malformed notification).
"""

from __future__ import annotations

from dataclasses import dataclass

from drivers.errors import DecodeError
from drivers.gatt.blood_pressure import (
    BloodPressureMeasurement,
    decode_blood_pressure_measurement,
    encode_blood_pressure_measurement,
)
from drivers.gatt.fields import Reader, Writer

PROFILE = "blood_pressure_record"
_FIRST_AND_LAST = 0b11
_MEASUREMENT_UUID = 0x2A35


@dataclass(frozen=True, slots=True)
class BloodPressureRecord:
    """One stored measurement and its place in the cuff's memory."""

    sequence_number: int
    measurement: BloodPressureMeasurement


def decode_blood_pressure_record(data: bytes | bytearray) -> BloodPressureRecord:
    """Decode one Blood Pressure Record notification.

    Raises:
        DecodeError: Truncated, segmented, holding another characteristic than a Blood
            Pressure Measurement, or a measurement that does not decode.
    """
    r = Reader(data, PROFILE)
    header = r.u8("segmentation header")
    if header & _FIRST_AND_LAST != _FIRST_AND_LAST:
        raise DecodeError(PROFILE, f"a segmented record (header 0x{header:02x}) is not supported")
    sequence_number = r.u16("sequence number")
    uuid = r.u16("uuid")
    if uuid != _MEASUREMENT_UUID:
        raise DecodeError(PROFILE, f"holds characteristic 0x{uuid:04x}, not 0x2A35")
    try:
        measurement = decode_blood_pressure_measurement(bytes(data)[5:])
    except DecodeError as exc:
        raise DecodeError(PROFILE, f"recorded measurement: {exc}") from None
    return BloodPressureRecord(sequence_number, measurement)


def encode_blood_pressure_record(record: BloodPressureRecord, *, counter: int = 0) -> bytes:
    """The record as one message (the simulator's side)."""
    head = (
        Writer()
        .u8(_FIRST_AND_LAST | (counter & 0x3F) << 2)
        .u16(record.sequence_number)
        .u16(_MEASUREMENT_UUID)
        .bytes()
    )
    return head + encode_blood_pressure_measurement(record.measurement)
