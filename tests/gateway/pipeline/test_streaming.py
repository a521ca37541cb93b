"""Streaming filter and resampler equal their offline versions, for any chunking."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import signal

from gateway.pipeline.filter import StreamingFilter, bandpass_sos

if TYPE_CHECKING:
    from numpy.typing import NDArray
from gateway.pipeline.resample import StreamingResampler


def split(x: NDArray[np.float64], sizes: list[int]) -> list[NDArray[np.float64]]:
    chunks, i = [], 0
    for n in sizes:
        if i >= len(x):
            break
        chunks.append(x[i : i + n])
        i += n
    if i < len(x):
        chunks.append(x[i:])
    return chunks


chunkings = st.lists(st.integers(1, 150), min_size=1, max_size=60)


@settings(max_examples=40, deadline=None)
@given(chunkings, st.sampled_from([(135.0, None), (55.0, None), (130.0, 50.0), (500.0, 60.0)]))
def test_chunked_filtering_equals_whole(sizes: list[int], case: tuple[float, float | None]) -> None:
    """Test sosfilt with carried zi, for any chunking, against sosfilt of the whole signal."""
    rate, notch = case
    rng = np.random.default_rng(len(sizes))
    x = rng.normal(size=(2000, 3)) + np.linspace(0, 5, 2000)[:, None]
    sos = bandpass_sos(rate, 0.5, 8.0 if rate < 100 else 40.0, notch_hz=notch)
    f = StreamingFilter(sos, 3)
    chunked = np.vstack([f.process(c) for c in split(x, sizes)])
    whole = signal.sosfilt(sos, x, axis=0)
    np.testing.assert_allclose(chunked, whole, rtol=1e-9, atol=1e-12 * np.abs(whole).max())


@settings(max_examples=40, deadline=None)
@given(chunkings, st.sampled_from([(135, 500), (130, 500), (25, 250), (55, 500), (500, 250)]))
def test_chunked_resampling_equals_resample_poly(sizes: list[int], rates: tuple[int, int]) -> None:
    """Test the streaming polyphase resampler against resample_poly of the whole signal."""
    rate_in, rate_out = rates
    rng = np.random.default_rng(sum(sizes))
    x = rng.normal(size=(1500, 2))
    r = StreamingResampler(rate_in, rate_out, 2)
    chunked = np.vstack([r.process(c) for c in split(x, sizes)])
    g = np.gcd(rate_in, rate_out)
    whole = signal.resample_poly(x, rate_out // g, rate_in // g, axis=0)
    assert len(chunked) > 0.9 * len(whole)  # all but the tail that needs samples after the end
    np.testing.assert_allclose(chunked, whole[: len(chunked)], atol=1e-6)
