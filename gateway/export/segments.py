"""Waveform rows joined into continuous segments (WFDB and EDF files hold one each)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from gateway import codec

if TYPE_CHECKING:
    from collections.abc import Iterable

    from numpy.typing import NDArray

    from buffers.records import OutboxRecord

_JOIN_TOLERANCE = 1.5  # sample periods: chunks closer than this continue a segment


@dataclass(slots=True)
class Segment:
    """Consecutive samples of one stream at one rate, with no gap."""

    stream: str
    rate_hz: float
    t0_s: float
    chunks: list[NDArray[np.int32]] = field(default_factory=list)
    n: int = 0

    @property
    def end_s(self) -> float:
        """The time the next sample would have."""
        return self.t0_s + self.n / self.rate_hz

    @property
    def samples(self) -> NDArray[np.int32]:
        """``(n_samples, n_channels)``."""
        return np.concatenate(self.chunks) if self.chunks else np.zeros((0, 1), np.int32)


def segments(records: Iterable[OutboxRecord]) -> list[Segment]:
    """Raw waveform rows (time order) as segments per stream, split at gaps and rate changes.

    Conversion results (float rows) are not raw samples and are left out: ``wgw plot`` draws
    them.
    """
    open_: dict[str, Segment] = {}
    done: list[Segment] = []
    for r in records:
        if r.kind != "waveform" or r.encoding == "zlib" or not r.sample_rate_hz:
            continue
        samples = codec.waveform_samples(r)
        current = open_.get(r.stream)
        joins = (
            current is not None
            and current.rate_hz == r.sample_rate_hz
            and current.chunks[0].shape[1] == samples.shape[1]
            and abs(r.t0_s - current.end_s) < _JOIN_TOLERANCE / r.sample_rate_hz
        )
        if not joins:
            if current is not None:
                done.append(current)
            current = open_[r.stream] = Segment(r.stream, r.sample_rate_hz, r.t0_s)
        assert current is not None
        current.chunks.append(samples)
        current.n += len(samples)
    done.extend(open_.values())
    return sorted(done, key=lambda s: (s.stream, s.t0_s))
