"""A stream's tracker across a restart: the time since the stored data ended is one gap."""

from __future__ import annotations

from drivers.ble.streams import StreamTracker
from drivers.frames import GapMarker


def test_the_first_live_data_after_a_start_marks_the_time_since_the_stored_end() -> None:
    """Test a waveform stored up to 100.0 s and live again at 104.0 s: one ``restart`` gap
    from 100.0 to 104.0; the frames after it join up without another."""
    tracker = StreamTracker("strap", "ecg", 130.0)
    tracker.resume(100.0)
    first = tracker.data(104.0, 104.5, 65)
    assert first == GapMarker("strap", "ecg", 0, 100.0, 104.0, "restart")
    assert tracker.data(104.5, 105.0, 65) is None
    assert (tracker.gaps, tracker.gap_s) == (1, 4.0)


def test_a_start_that_missed_nothing_marks_nothing() -> None:
    """Test data resuming within half a sample of the stored end (a clock learnt again): no
    gap; nor for a stream stored in no earlier run."""
    tracker = StreamTracker("strap", "ecg", 130.0)
    tracker.resume(100.0)
    assert tracker.data(100.002, 100.5, 65) is None
    fresh = StreamTracker("strap", "acc", 50.0)
    assert fresh.data(100.0, 101.0, 50) is None


def test_records_fetched_before_the_first_live_reading_shorten_the_gap() -> None:
    """Test a watch whose records since the stored end came first (backfill at connect): the
    restart gap starts after the last of them, and they open no gap themselves."""
    tracker = StreamTracker("watch", "heart_rate")
    tracker.resume(100.0)
    assert tracker.data(101.0, 101.0, 1, backfilled=True) is None
    assert tracker.data(102.0, 102.0, 1, backfilled=True) is None
    gap = tracker.data(110.0, 110.0, 1)
    assert gap == GapMarker("watch", "heart_rate", 0, 102.0, 110.0, "restart")


def test_a_link_loss_before_the_first_data_is_the_restarts_gap() -> None:
    """Test a link lost before this run's first data: one gap (``restart``), not two."""
    tracker = StreamTracker("watch", "heart_rate")
    tracker.resume(100.0)
    tracker.link_lost()
    gap = tracker.data(110.0, 110.0, 1)
    assert gap is not None and gap.reason == "restart"
    tracker.link_lost()
    later = tracker.data(120.0, 120.0, 1)
    assert later == GapMarker("watch", "heart_rate", 1, 110.0, 120.0, "link_lost")
