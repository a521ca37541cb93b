"""The loop lag's histogram and its percentiles."""

from __future__ import annotations

from gateway.loop_lag import BUCKETS_S, LoopLag, percentile_s


def test_samples_land_in_their_buckets_and_percentiles_read_them_back() -> None:
    lag = LoopLag()
    for ms in [0.5] * 98 + [12.0, 700.0]:
        lag.record(ms / 1000)
    counts = lag.counts
    assert len(counts) == len(BUCKETS_S) + 1 and sum(counts) == 100
    assert percentile_s(counts, 50) == 0.001
    assert percentile_s(counts, 99) == 0.015  # 12 ms is in (10, 15]
    assert percentile_s(counts, 100) == 1.0
    assert abs(lag.sum_s - (0.049 + 0.712)) < 1e-9
    lag.record(9.0)  # above every bound
    assert percentile_s(lag.counts, 100) == float("inf")
    assert percentile_s([0] * len(counts), 99) == 0.0
