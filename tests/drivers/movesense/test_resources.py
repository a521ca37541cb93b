"""Tests for Movesense's GSP packets and resource data, against the layouts of Movesense's own
``gatt_sensordata_app`` (its firmware and its Python client) and the resource definitions."""

from __future__ import annotations

import contextlib
import json
import struct
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.errors import DecodeError
from drivers.movesense import gsp
from drivers.movesense.resources import (
    ECG_RATES,
    decode_data,
    encode_heart_rate,
    encode_samples,
    encode_temperature,
    parse_path,
)


def official_ecg(data: bytes) -> tuple[int, list[int]]:
    """``movesense_sensor_data.py``'s reading of an ECG notification: the timestamp at byte 2,
    then 16 int32 samples from byte 6."""
    return struct.unpack_from("<I", data, 2)[0], [
        struct.unpack_from("<i", data, 6 + i * 4)[0] for i in range(16)
    ]


def official_imu9(data: bytes) -> tuple[int, list[list[float]]]:
    """Its reading of an IMU9 notification (DATA and DATA_PART2 joined, the part's header
    skipped): 8 rows of acc, gyro, magnetometer x, y, z, each array 8 x 12 bytes."""
    rows = []
    for i in range(8):
        offset, skip = 6 + i * 3 * 4, 3 * 8 * 4
        rows.append(
            [
                struct.unpack_from("<f", data, offset + a * skip + c * 4)[0]
                for a in range(3)
                for c in range(3)
            ]
        )
    return struct.unpack_from("<I", data, 2)[0], rows


def test_an_ecg_notification_reads_as_movesense_reads_it() -> None:
    counts = [(-1) ** i * 1000 * i for i in range(16)]
    data = bytes([gsp.DATA, 100]) + struct.pack("<I16i", 123_456, *counts)
    packet = gsp.decode_packet(data)
    decoded = decode_data(parse_path("/Meas/ECG/200"), packet.body)
    stamp, official = official_ecg(data)
    assert decoded.timestamp_ms == stamp == 123_456
    assert decoded.samples is not None and decoded.samples[:, 0].tolist() == official == counts


def test_an_imu9_notification_in_two_parts_reads_as_movesense_reads_it() -> None:
    """292 bytes of data: 150 in the DATA packet, 142 in DATA_PART2 (the firmware's split)."""
    rng = np.random.default_rng(4)
    rows = rng.normal(0.0, 10.0, (8, 9)).astype(np.float32).astype(np.float64)
    resource = parse_path("/Meas/IMU9/104")
    packets = gsp.encode_data(99, encode_samples(resource, 5_000, rows))
    assert [len(p) - 2 for p in packets] == [150, 142]
    assert [p[0] for p in packets] == [gsp.DATA, gsp.DATA_PART2]
    joined = packets[0] + packets[1][2:]
    stamp, official = official_imu9(joined)
    reassembly = gsp.Reassembly()
    assert reassembly.add(gsp.decode_packet(packets[0])) is None
    body = reassembly.add(gsp.decode_packet(packets[1]))
    assert body is not None
    decoded = decode_data(resource, body)
    assert decoded.timestamp_ms == stamp == 5_000
    assert decoded.samples is not None and decoded.samples.tolist() == official == rows.tolist()


def test_heart_rate_and_temperature() -> None:
    hr = decode_data(parse_path("/Meas/HR"), encode_heart_rate(61.5, [976, 990]))
    assert hr.values == {"average_bpm": 61.5, "rr_ms": [976, 990]}
    temp = decode_data(parse_path("/Meas/Temp"), encode_temperature(1000, 306.65))
    assert temp.timestamp_ms == 1000 and temp.values == {"kelvin": pytest.approx(306.65)}


def test_results_say_their_status() -> None:
    assert gsp.decode_packet(gsp.encode_result(7, 501)).status() == 501
    assert gsp.decode_packet(bytes([gsp.RESULT, 1]) + b"Hello").status() == 200
    assert gsp.encode_command(gsp.SUBSCRIBE, 100, "/Meas/ECG/200") == b"\x01\x64/Meas/ECG/200"


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("/Meas/ECG/300", "the firmware offers 125, 128, 200, 250, 256, 500, 512"),
        ("/Meas/IMU6/50", "13"),
        ("/Meas/Acc/52", "is not"),
        ("Meas/HR", "is not"),
    ],
)
def test_paths_the_gateway_does_not_read_are_refused_by_name(path: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_path(path)


@pytest.mark.parametrize(
    ("path", "body", "problem"),
    [
        ("/Meas/ECG/250", b"\x01\x02", "no timestamp"),
        ("/Meas/ECG/250", b"\x00" * 4, "not whole"),
        ("/Meas/ECG/250", b"\x00" * 7, "not whole"),
        ("/Meas/IMU6/52", b"\x00" * (4 + 12), "not whole 24-byte samples"),
        ("/Meas/HR", b"\x00\x00\x80\x7f", "out of 0-250"),  # +inf
        ("/Meas/HR", b"\x00\x00\x70\x42\x01", "not a float and uint16s"),
        ("/Meas/Temp", b"\x00" * 7, "not 8"),
    ],
)
def test_malformed_data_says_what_is_wrong(path: str, body: bytes, problem: str) -> None:
    with pytest.raises(DecodeError, match=problem):
        decode_data(parse_path(path), body)


def test_a_part_without_its_first_part_is_refused_and_a_lost_part_counted() -> None:
    reassembly = gsp.Reassembly()
    with pytest.raises(DecodeError, match="without the part before it"):
        reassembly.add(gsp.Packet(gsp.DATA_PART2, 3, b"\x00" * 10))
    assert reassembly.add(gsp.Packet(gsp.DATA, 3, b"\x00" * 150)) is None
    assert reassembly.add(gsp.Packet(gsp.DATA, 3, b"\x00" * 8)) == b"\x00" * 8  # part 2 lost
    assert reassembly.broken == 1


@given(
    st.binary(max_size=400),
    st.sampled_from(
        [
            "/Meas/ECG/250",
            "/Meas/ECG/128/mV",
            "/Meas/IMU6/52",
            "/Meas/IMU9/104",
            "/Meas/HR",
            "/Meas/Temp",
        ]
    ),
)
def test_any_bytes_raise_nothing_but_decode_error(data: bytes, path: str) -> None:
    with contextlib.suppress(DecodeError):
        decode_data(parse_path(path), data)
    with contextlib.suppress(DecodeError):
        gsp.decode_packet(data)
    with contextlib.suppress(DecodeError):
        gsp.decode_command(data)


@given(
    st.sampled_from([f"/Meas/ECG/{r}" for r in ECG_RATES] + ["/Meas/IMU6/52", "/Meas/IMU9/208"]),
    st.integers(0, 2**32 - 1),
    st.integers(1, 8),
    st.integers(0, 2**31),
)
def test_waveforms_round_trip(path: str, stamp: int, n: int, seed: int) -> None:
    resource = parse_path(path)
    channels = 3 * resource.vectors or 1
    rng = np.random.default_rng(seed)
    samples = rng.integers(-(2**20), 2**20, (n, channels)).astype(np.float64)
    decoded = decode_data(resource, encode_samples(resource, stamp, samples))
    assert decoded.timestamp_ms == stamp
    assert decoded.samples is not None and decoded.samples.tolist() == samples.tolist()


@given(st.binary(min_size=0, max_size=450), st.integers(1, 255))
def test_data_of_any_length_survives_its_split(body: bytes, ref: int) -> None:
    reassembly = gsp.Reassembly()
    out = [reassembly.add(gsp.decode_packet(p)) for p in gsp.encode_data(ref, body)]
    assert out[-1] == body and all(o is None for o in out[:-1])


def test_wgw_decode_movesense_data() -> None:
    data = bytes([gsp.DATA, 100]) + struct.pack("<If", 1000, 306.65)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway",
            "decode",
            "movesense_data",
            data.hex(),
            "--path",
            "/Meas/Temp",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    body = json.loads(out.stdout)
    assert body["path"] == "/Meas/Temp" and body["timestamp_ms"] == 1000
    assert body["kelvin"] == pytest.approx(306.65)
