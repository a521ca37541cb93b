"""Record Access Control Point (0x2A52): what a collector writes, and the answers it is indicated.

Per the GATT Specification Supplement, as the profiles that keep records use it (Glucose,
Continuous Glucose Monitoring, Pulse Oximeter spot-check records, and the same pattern in
others): a write is op code u8, operator u8, operand; the server answers each request with an
indication on the same characteristic, after sending the records themselves (for "report
stored records") as notifications of the profile's measurement characteristic.

Op codes: 1 report stored records, 2 delete stored records, 3 abort operation, 4 report number
of stored records; answers: 5 number of stored records (operand u16), 6 response code (operand:
the request's op code u8 and a response code value u8). Operators: 0 null, 1 all records,
2 less than or equal to, 3 greater than or equal to, 4 within range of (inclusive), 5 first
record, 6 last record. Operators 2-4 carry a filter type u8 (1 sequence number, then u16
values) before their values. A server busy with a procedure refuses the write with the ATT
error 0xFE (procedure already in progress), not with a response code.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TypeVar

from drivers.errors import DecodeError
from drivers.gatt.fields import Reader, Writer

PROFILE = "racp"
_E = TypeVar("_E", bound=enum.IntEnum)


class OpCode(enum.IntEnum):
    """What a write asks for, or what an indication answers."""

    REPORT_RECORDS = 1
    DELETE_RECORDS = 2
    ABORT = 3
    REPORT_NUMBER = 4
    NUMBER_RESPONSE = 5
    RESPONSE_CODE = 6


class Operator(enum.IntEnum):
    """Which records a request is about."""

    NULL = 0
    ALL = 1
    LESS_OR_EQUAL = 2
    GREATER_OR_EQUAL = 3
    WITHIN_RANGE = 4
    FIRST = 5
    LAST = 6


class ResponseCode(enum.IntEnum):
    """How the server ended a procedure."""

    SUCCESS = 1
    OP_CODE_NOT_SUPPORTED = 2
    INVALID_OPERATOR = 3
    OPERATOR_NOT_SUPPORTED = 4
    INVALID_OPERAND = 5
    NO_RECORDS_FOUND = 6
    ABORT_UNSUCCESSFUL = 7
    PROCEDURE_NOT_COMPLETED = 8
    OPERAND_NOT_SUPPORTED = 9


FILTER_SEQUENCE_NUMBER = 1
# The ATT application error a server answers a write with while a procedure runs.
ATT_PROCEDURE_ALREADY_IN_PROGRESS = 0xFE
_FILTERED = (Operator.LESS_OR_EQUAL, Operator.GREATER_OR_EQUAL, Operator.WITHIN_RANGE)


@dataclass(frozen=True, slots=True)
class Request:
    """A write to the control point; ``bounds`` are sequence numbers (one, or two for a range)."""

    op_code: OpCode
    operator: Operator
    bounds: tuple[int, ...] = ()

    def encode(self) -> bytes:
        """The bytes to write."""
        w = Writer().u8(self.op_code).u8(self.operator)
        if self.operator in _FILTERED:
            w.u8(FILTER_SEQUENCE_NUMBER)
            for bound in self.bounds:
                w.u16(bound)
        return w.bytes()


def records_from(sequence_number: int) -> Request:
    """Report the records numbered ``sequence_number`` and later."""
    return Request(OpCode.REPORT_RECORDS, Operator.GREATER_OR_EQUAL, (sequence_number,))


def count_from(sequence_number: int) -> Request:
    """Report how many records are numbered ``sequence_number`` and later."""
    return Request(OpCode.REPORT_NUMBER, Operator.GREATER_OR_EQUAL, (sequence_number,))


ABORT = Request(OpCode.ABORT, Operator.NULL)


def decode_request(data: bytes | bytearray) -> Request:
    """A control-point write, as a server reads it (the simulator's side).

    Raises:
        DecodeError: Truncated, trailing bytes, an unknown op code or operator, or a filter
            other than the sequence number.
    """
    r = Reader(data, PROFILE)
    op_code = _member(OpCode, r.u8("op code"))
    operator = _member(Operator, r.u8("operator"))
    bounds: tuple[int, ...] = ()
    if operator in _FILTERED:
        kind = r.u8("filter type")
        if kind != FILTER_SEQUENCE_NUMBER:
            raise DecodeError(PROFILE, f"filter type {kind} not supported")
        count = 2 if operator is Operator.WITHIN_RANGE else 1
        bounds = tuple(r.u16("filter value") for _ in range(count))
    r.done()
    return Request(op_code, operator, bounds)


@dataclass(frozen=True, slots=True)
class Answer:
    """An indication of the control point: a count, or how a request ended."""

    op_code: OpCode  # NUMBER_RESPONSE or RESPONSE_CODE
    count: int | None = None  # NUMBER_RESPONSE
    request: OpCode | None = None  # RESPONSE_CODE: the request it answers ...
    code: ResponseCode | None = None  # ... and how it ended

    def encode(self) -> bytes:
        """The indication's bytes (the simulator's side)."""
        w = Writer().u8(self.op_code).u8(Operator.NULL)
        if self.op_code is OpCode.NUMBER_RESPONSE:
            w.u16(self.count or 0)
        else:
            w.u8(self.request or 0).u8(self.code or 0)
        return w.bytes()


def number_response(count: int) -> Answer:
    """How many records match."""
    return Answer(OpCode.NUMBER_RESPONSE, count=count)


def response(request: OpCode, code: ResponseCode) -> Answer:
    """How ``request`` ended."""
    return Answer(OpCode.RESPONSE_CODE, request=request, code=code)


def decode_answer(data: bytes | bytearray) -> Answer:
    """A control-point indication, as the collector reads it.

    Raises:
        DecodeError: Truncated, trailing bytes, an op code that is not an answer, an operator
            other than null, or an unknown request op code or response code.
    """
    r = Reader(data, PROFILE)
    op_code = _member(OpCode, r.u8("op code"))
    operator = r.u8("operator")
    if operator != Operator.NULL:
        raise DecodeError(PROFILE, f"an answer's operator must be null, not {operator}")
    if op_code is OpCode.NUMBER_RESPONSE:
        answer = number_response(r.u16("number of records"))
    elif op_code is OpCode.RESPONSE_CODE:
        request = _member(OpCode, r.u8("request op code"))
        answer = response(request, _member(ResponseCode, r.u8("response code")))
    else:
        raise DecodeError(PROFILE, f"op code {op_code.name} is a request, not an answer")
    r.done()
    return answer


def _member(kind: type[_E], value: int) -> _E:
    try:
        return kind(value)
    except ValueError:
        raise DecodeError(PROFILE, f"unknown {kind.__name__} {value}") from None
