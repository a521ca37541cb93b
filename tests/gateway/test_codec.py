"""The storage codecs: waveforms (zigzag deltas, byte-shuffled, zlib) and vitals (primed
deflate) round-trip exactly, for any samples; rows written before still decode.
"""

from __future__ import annotations

import dataclasses
import json
import zlib

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from buffers.records import OutboxRecord
from drivers.frames import Frame, GapMarker, VitalReading, WaveformChunk
from gateway import codec
from gateway.readings import Labels, Reading

SAMPLES = hnp.arrays(
    np.int32,
    st.tuples(st.integers(1, 200), st.integers(1, 4)),
    elements=st.integers(-(2**31), 2**31 - 1),
)


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(SAMPLES)
def test_any_waveform_round_trips(samples: np.ndarray) -> None:
    """Test exact samples back, whichever encoding the packer chose (raw when it is smaller)."""
    record = codec.to_record(WaveformChunk("d", "ecg", 0, 1.0, 130.0, samples))
    assert record.encoding in {codec.WAVEFORM_ENCODING, "raw"}
    np.testing.assert_array_equal(codec.waveform_samples(record), samples)


def test_a_physiological_chunk_packs_small() -> None:
    """Test a smooth signal: one byte a delta, well under the 4 raw bytes a sample."""
    t = np.arange(130) / 130.0
    samples = (np.sin(2 * np.pi * 1.2 * t) * 500).astype(np.int32).reshape(-1, 1)
    record = codec.to_record(WaveformChunk("d", "ecg", 0, 1.0, 130.0, samples))
    assert record.encoding == codec.WAVEFORM_ENCODING
    assert record.payload[0] == 1  # every zigzag delta fits a byte
    assert len(record.payload) < samples.nbytes / 3


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["heart_rate_bpm", "spo2_pct", "sensor_contact", "rr_intervals_ms", "x"]),
        st.one_of(
            st.integers(),
            st.floats(allow_nan=False),
            st.text(max_size=12),
            st.lists(st.integers(), max_size=8),
        ),
        max_size=5,
    )
)
def test_any_vitals_round_trip(values: dict[str, object]) -> None:
    """Test the primed deflate of vitals JSON gives the values back."""
    record = codec.to_record(VitalReading("d", "heart_rate", 0, 1.0, values))
    assert record.encoding == codec.VITALS_ENCODING
    assert codec.vital_values(record) == values


def test_rows_written_before_still_decode() -> None:
    """Test the encodings of earlier schema versions: raw JSON vitals and delta-zlib chunks."""
    vital = OutboxRecord("vital", "d", "heart_rate", 0, 1.0, b'{"heart_rate_bpm":61}')
    assert codec.vital_values(vital) == {"heart_rate_bpm": 61}
    samples = np.array([[1, 5], [3, 2], [10, -4]], dtype=np.int32)
    deltas = np.diff(samples, axis=0, prepend=np.zeros((1, 2), dtype=np.int32))
    old = OutboxRecord(
        "waveform",
        "d",
        "ecg",
        0,
        1.0,
        zlib.compress(deltas.tobytes()),
        sample_rate_hz=130.0,
        dtype="<i4",
        shape=(3, 2),
        encoding="delta-zlib",
    )
    np.testing.assert_array_equal(codec.waveform_samples(old), samples)


def test_a_heart_rate_reading_is_a_quarter_of_its_json() -> None:
    """Test the point of the primed dictionary."""
    values = {"heart_rate_bpm": 72, "sensor_contact": "detected", "rr_intervals_ms": [833.0]}
    record = codec.to_record(VitalReading("d", "heart_rate", 0, 1.0, values))
    assert len(record.payload) * 3 < len(json.dumps(values, separators=(",", ":")))


VALUES = st.dictionaries(
    st.sampled_from(["heart_rate_bpm", "spo2_pct", "unit", "timestamp", "rr_intervals_ms"]),
    st.one_of(
        st.none(),
        st.integers(-1000, 1000),
        st.floats(allow_nan=False, allow_infinity=False, width=32),
        st.text(max_size=8),
        st.lists(st.integers(0, 2000), max_size=4),
    ),
)


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    st.one_of(
        st.builds(
            VitalReading,
            st.just("d"),
            st.sampled_from(["heart_rate", "spo2"]),
            st.integers(0, 2**31),
            st.floats(1.6e9, 2e9),
            VALUES,
            st.booleans(),
        ),
        st.builds(
            GapMarker,
            st.just("d"),
            st.just("ecg"),
            st.integers(0, 100),
            st.floats(1.6e9, 2e9),
            st.floats(1.6e9, 2e9),
            st.sampled_from(["link_lost", "lost", "silent"]),
            st.booleans(),
        ),
        st.builds(
            WaveformChunk,
            st.just("d"),
            st.just("ecg"),
            st.integers(0, 100),
            st.floats(1.6e9, 2e9),
            st.just(130.0),
            SAMPLES,
        ),
    ),
    st.builds(
        Labels, st.one_of(st.none(), st.text(max_size=6)), st.one_of(st.none(), st.integers(1, 9))
    ),
)
def test_both_lanes_publish_the_same_bytes(frame: Frame, labels: Labels) -> None:
    """Test a reading published live and the same reading stored and read back: equal payloads
    (a subscriber cannot tell which lane a message came by), and the row decodes to the frame.
    """
    live = Reading(frame, labels)
    record = dataclasses.replace(
        codec.to_record(frame), participant_id=labels.participant_id, session_id=labels.session_id
    )
    stored = codec.reading_of(record)
    assert codec.mqtt_payload(stored) == codec.mqtt_payload(live)
    assert stored.labels == labels
    if isinstance(frame, WaveformChunk):
        assert isinstance(stored.frame, WaveformChunk)
        np.testing.assert_array_equal(stored.frame.samples, frame.samples)
    else:
        assert stored.frame == frame
