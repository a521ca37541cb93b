"""Movesense's GATT SensorData Protocol (GSP): commands to the sensor, the packets it answers.

As the firmware's ``gatt_sensordata_app`` serves it (movesense-device-lib,
``samples/gatt_sensordata_app/GATTSensorDataClient.cpp`` and its ``python_client``): service
``34802252-7185-4d5d-b431-630e7050e8f0``, a command characteristic ``34800001-...`` (write) and
a data characteristic ``34800002-...`` (notify).

A command is ``op u8`` (0 HELLO, 1 SUBSCRIBE, 2 UNSUBSCRIBE), a client reference ``u8`` (not
0) that names the subscription, and for SUBSCRIBE the resource's path in ASCII
(``/Meas/ECG/250``). A packet back is ``type u8`` (1 a command's result, 2 data, 3 and 4 the
data's second and third parts), the reference, then a result's ``uint16`` HTTP status (HELLO
answers ``Hello``) or the resource's data. Data longer than 150 bytes goes out as 150 bytes in
a DATA packet and the rest in the parts after it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Final

from drivers.errors import DecodeError

SERVICE: Final = "34802252-7185-4d5d-b431-630e7050e8f0"
COMMAND: Final = "34800001-7185-4d5d-b431-630e7050e8f0"
DATA_CHARACTERISTIC: Final = "34800002-7185-4d5d-b431-630e7050e8f0"
PROFILE: Final = "movesense_data"

HELLO: Final = 0
SUBSCRIBE: Final = 1
UNSUBSCRIBE: Final = 2

RESULT: Final = 1
DATA: Final = 2
DATA_PART2: Final = 3
DATA_PART3: Final = 4
PART_BYTES: Final = 150  # data bytes a DATA packet (or a part) carries before the next part

_HELLO_ANSWER: Final = b"Hello"
_STATUS = struct.Struct("<H")


def encode_command(op: int, reference: int, path: str = "") -> bytes:
    """A command as the central writes it."""
    if not 1 <= reference <= 255:
        msg = f"reference {reference} is not 1-255"
        raise ValueError(msg)
    return bytes([op, reference]) + path.encode("ascii")


def decode_command(data: bytes | bytearray) -> tuple[int, int, str]:
    """A command as the sensor reads it (the simulator's side): op, reference, path.

    Raises:
        DecodeError: Too short, an unknown op, reference 0, or a path that is not ASCII.
    """
    if len(data) < 2 or data[0] not in (HELLO, SUBSCRIBE, UNSUBSCRIBE) or data[1] == 0:
        raise DecodeError(PROFILE, "not a GSP command")
    try:
        return data[0], data[1], bytes(data[2:]).decode("ascii")
    except UnicodeDecodeError:
        raise DecodeError(PROFILE, "the path is not ASCII") from None


@dataclass(frozen=True, slots=True)
class Packet:
    """One notification of the data characteristic."""

    kind: int  # RESULT, DATA, DATA_PART2, DATA_PART3
    reference: int
    body: bytes

    def status(self) -> int:
        """A result's HTTP status (HELLO's ``Hello``: 200).

        Raises:
            DecodeError: Not a result, or a body that is neither.
        """
        if self.kind != RESULT:
            raise DecodeError(PROFILE, "not a command result")
        if self.body == _HELLO_ANSWER:
            return 200
        if len(self.body) != _STATUS.size:
            raise DecodeError(PROFILE, f"a result of {len(self.body)} bytes, not 2")
        status: int = _STATUS.unpack(self.body)[0]
        return status


def decode_packet(data: bytes | bytearray) -> Packet:
    """Decode one notification of the data characteristic.

    Raises:
        DecodeError: Shorter than its 2-byte header, an unknown type, or reference 0.
    """
    if len(data) < 2:
        raise DecodeError(PROFILE, f"{len(data)} bytes is shorter than the 2-byte header")
    if data[0] not in (RESULT, DATA, DATA_PART2, DATA_PART3):
        raise DecodeError(PROFILE, f"unknown packet type {data[0]}")
    if data[1] == 0:
        raise DecodeError(PROFILE, "reference 0")
    return Packet(data[0], data[1], bytes(data[2:]))


def encode_result(reference: int, status: int) -> bytes:
    """A command's result as the sensor sends it."""
    return bytes([RESULT, reference]) + _STATUS.pack(status)


def encode_data(reference: int, body: bytes) -> list[bytes]:
    """A subscription's data as the sensor sends it: one packet, or a DATA and its parts."""
    chunks = [body[i : i + PART_BYTES] for i in range(0, len(body), PART_BYTES)] or [b""]
    if len(chunks) > 3:
        msg = f"{len(body)} bytes of data need more than three packets"
        raise ValueError(msg)
    kinds = (DATA, DATA_PART2, DATA_PART3)
    return [bytes([kinds[i], reference]) + chunk for i, chunk in enumerate(chunks)]


@dataclass(slots=True)
class Reassembly:
    """Subscriptions' data put back together from their packets.

    A DATA packet (or part) of exactly :data:`PART_BYTES` is continued by the next part.
    ``broken`` counts data that lost a part (a new DATA came first): dropped, never joined
    with the wrong bytes.
    """

    broken: int = 0
    _open: dict[int, tuple[int, bytearray]] = field(default_factory=dict)  # ref -> (kind, so far)

    def add(self, packet: Packet) -> bytes | None:
        """The packet's subscription data once complete; None while parts are missing.

        Raises:
            DecodeError: A part with no DATA before it (its first part was lost or broken).
        """
        ref, body = packet.reference, packet.body
        if packet.kind == DATA:
            if self._open.pop(ref, None) is not None:
                self.broken += 1
            if len(body) < PART_BYTES:
                return body
            self._open[ref] = (DATA, bytearray(body))
            return None
        opened = self._open.pop(ref, None)
        if opened is None or packet.kind != opened[0] + 1:
            raise DecodeError(PROFILE, f"data part {packet.kind - 1} without the part before it")
        so_far = opened[1] + body
        if len(body) < PART_BYTES or packet.kind == DATA_PART3:
            return bytes(so_far)
        self._open[ref] = (packet.kind, so_far)
        return None
