"""Record Access Control Point: vectors from the specification's tables, round trips, and any
bytes at all either decoding or raising DecodeError (never another exception).
"""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.errors import DecodeError
from drivers.gatt import racp
from drivers.gatt.racp import Answer, OpCode, Operator, Request, ResponseCode

requests = st.one_of(
    st.builds(
        Request,
        st.sampled_from(list(OpCode)),
        st.sampled_from([Operator.NULL, Operator.ALL, Operator.FIRST, Operator.LAST]),
    ),
    st.builds(
        Request,
        st.sampled_from(list(OpCode)),
        st.sampled_from([Operator.LESS_OR_EQUAL, Operator.GREATER_OR_EQUAL]),
        st.tuples(st.integers(0, 0xFFFF)),
    ),
    st.builds(
        Request,
        st.sampled_from(list(OpCode)),
        st.just(Operator.WITHIN_RANGE),
        st.tuples(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF)),
    ),
)
answers = st.one_of(
    st.builds(racp.number_response, st.integers(0, 0xFFFF)),
    st.builds(racp.response, st.sampled_from(list(OpCode)), st.sampled_from(list(ResponseCode))),
)


def test_vectors_from_the_tables() -> None:
    """Test the byte layouts a collector writes and reads."""
    assert racp.count_from(0x0102).encode() == bytes([4, 3, 1, 0x02, 0x01])
    assert racp.records_from(7).encode() == bytes([1, 3, 1, 7, 0])
    assert racp.ABORT.encode() == bytes([3, 0])
    assert Request(OpCode.REPORT_RECORDS, Operator.ALL).encode() == bytes([1, 1])
    assert racp.decode_answer(bytes([5, 0, 0x2C, 0x01])) == racp.number_response(300)
    assert racp.decode_answer(bytes([6, 0, 1, 6])) == racp.response(
        OpCode.REPORT_RECORDS, ResponseCode.NO_RECORDS_FOUND
    )


@given(requests)
def test_requests_round_trip(request: Request) -> None:
    """Test any request the collector may write reads back the same on the server's side."""
    assert racp.decode_request(request.encode()) == request


@given(answers)
def test_answers_round_trip(answer: Answer) -> None:
    """Test any answer the server may indicate reads back the same."""
    assert racp.decode_answer(answer.encode()) == answer


@given(st.binary(max_size=12))
def test_any_bytes_decode_or_raise_decode_error(data: bytes) -> None:
    """Test malformed control-point bytes: a DecodeError, never anything else."""
    for decode in (racp.decode_answer, racp.decode_request):
        with contextlib.suppress(DecodeError):
            decode(data)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (bytes([6, 0, 1]), "truncated"),
        (bytes([5, 0, 1, 0, 9]), "trailing"),
        (bytes([1, 0]), "request, not an answer"),
        (bytes([6, 2, 1, 1]), "operator must be null"),
        (bytes([6, 0, 1, 0x0B]), "unknown ResponseCode"),
    ],
)
def test_malformed_answers_are_named(data: bytes, reason: str) -> None:
    """Test the reason a malformed indication gives."""
    with pytest.raises(DecodeError, match=reason):
        racp.decode_answer(data)


def test_a_filter_other_than_the_sequence_number_is_refused() -> None:
    """Test a user-facing-time filter (type 2): not supported by this collector or simulator."""
    with pytest.raises(DecodeError, match="filter type 2"):
        racp.decode_request(bytes([1, 3, 2, 1, 2, 3, 4, 5, 6, 7]))
