"""The segment log on real files: payloads read back, replay after the index, a torn tail cut
off, a refused group taken back across a rotation.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

import pytest

from buffers.records import ClockStamp, OutboxRecord
from buffers.segments import SegmentFullError, SegmentLog

if TYPE_CHECKING:
    from pathlib import Path


def record(seq: int, size: int = 10) -> OutboxRecord:
    return OutboxRecord(
        "waveform",
        "d",
        "ecg",
        seq,
        1.8e9 + seq,
        bytes([seq % 256]) * size,
        sample_rate_hz=130.0,
        dtype="<i4",
        shape=(size // 4, 1),
        encoding="raw",
        clock=ClockStamp("boot", 1.7e9, True),
        participant_id="P1",
        session_id=3,
    )


def test_payloads_and_records_come_back(tmp_path: Path) -> None:
    """Test reads by placement (one by one and in runs) and a replay of everything."""
    log = SegmentLog(tmp_path / "s")
    batch = [(i + 1, record(i)) for i in range(5)]
    _, placed = log.append(batch, 123.0)
    assert [log.read(p.seg, p.offset, 10) for p in placed] == [r.payload for _, r in batch]
    spans = [(p.seg, p.offset, 10) for p in reversed(placed)]
    assert log.read_many(spans) == [r.payload for _, r in reversed(batch)]
    replayed = list(log.replay(2))
    assert [r.id for r in replayed] == [3, 4, 5]
    assert replayed[0].record == batch[2][1]
    assert replayed[0].stored_s == 123.0
    log.close()


def test_a_torn_tail_is_cut_off_and_the_rest_replays(tmp_path: Path) -> None:
    """Test a power cut mid-write: the last batch fails its CRC and goes; earlier ones stay."""
    log = SegmentLog(tmp_path / "s")
    log.append([(1, record(1)), (2, record(2))], 1.0)
    log.append([(3, record(3))], 2.0)
    log.close()
    path = log.path(log.numbers()[-1])
    whole = path.stat().st_size
    with path.open("r+b") as f:
        f.truncate(whole - 3)
    again = SegmentLog(tmp_path / "s")
    assert [r.id for r in again.replay(0)] == [1, 2]
    assert path.stat().st_size < whole - 3  # cut back to the end of the last whole batch
    again.close()


def test_a_refused_group_is_taken_back_across_a_rotation(tmp_path: Path) -> None:
    """Test undo: a group split over two files leaves nothing behind."""
    log = SegmentLog(tmp_path / "s", max_bytes=600)
    log.append([(1, record(1, 100))], 1.0)
    before = (log.numbers(), log.total_bytes())
    mark, placed = log.append([(i, record(i, 200)) for i in range(2, 6)], 2.0)
    assert len({p.seg for p in placed}) > 1  # it took more than one file
    log.undo(mark)
    assert (log.numbers(), log.total_bytes()) == before
    assert [r.id for r in log.replay(0)] == [1]
    log.append([(2, record(2))], 3.0)  # writing goes on where it was cut
    assert [r.id for r in log.replay(0)] == [1, 2]
    log.close()


def test_a_byte_budget_refuses_like_a_full_disk(tmp_path: Path) -> None:
    """Test SegmentFullError (ENOSPC) past the budget, and nothing of the group left."""
    log = SegmentLog(tmp_path / "s")
    log.append([(1, record(1, 100))], 1.0)
    used = log.total_bytes()
    log.limit_bytes(used + 50)
    with pytest.raises(SegmentFullError, match="budget") as refused:
        log.append([(2, record(2, 100))], 2.0)
    assert refused.value.errno == errno.ENOSPC
    assert log.total_bytes() == used
    log.close()


def vital(seq: int) -> OutboxRecord:
    return OutboxRecord("vital", "d", "heart_rate", seq, 1.8e9 + seq, b'{"bpm":%d}' % seq)


def test_waveforms_and_the_rest_go_to_lanes_of_their_own(tmp_path: Path) -> None:
    """Test the lanes: one group, two files; replay in id order; undo takes back both."""
    log = SegmentLog(tmp_path / "s")
    batch = [(1, record(1)), (2, vital(2)), (3, record(3)), (4, vital(4))]
    _, placed = log.append(batch, 1.0)
    assert len({p.seg for p in placed[::2]} | {p.seg for p in placed[1::2]}) == 2
    assert {log.path(p.seg).suffix for p in placed} == {".seg", ".vseg"}
    payloads = [r.payload for _, r in batch]
    assert [log.read(p.seg, p.offset, len(b)) for p, b in zip(placed, payloads, strict=True)] == (
        payloads
    )
    before = sorted((p.name, p.stat().st_size) for p in (tmp_path / "s").iterdir())
    mark, _ = log.append([(5, vital(5)), (6, record(6))], 2.0)
    log.undo(mark)
    assert sorted((p.name, p.stat().st_size) for p in (tmp_path / "s").iterdir()) == before
    log.append([(5, record(5)), (6, vital(6))], 3.0)
    log.close()
    again = SegmentLog(tmp_path / "s")
    assert [r.id for r in again.replay(1)] == [2, 3, 4, 5, 6]
    assert [(r.id, r.record.kind) for r in again.replay(4)] == [(5, "waveform"), (6, "vital")]
    ranges = again.id_ranges()
    assert [first for _, first, _ in ranges] == [1, 2]  # each lane's file, from its first id
    again.close()
