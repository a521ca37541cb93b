"""The gateway's signal chain for one stream: uniform grid -> band-pass -> resample -> windows.

The live pipeline and ``wgw process`` both run this, so a recording re-processed offline gives
exactly what the gateway computed. Filters and windows restart at every gap (a new segment).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from gateway.pipeline import quality
from gateway.pipeline.filter import StreamingFilter, bandpass_sos
from gateway.pipeline.grid import UniformGrid
from gateway.pipeline.heart_rate import beats
from gateway.pipeline.resample import StreamingResampler

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from gateway.config import DspConfig
    from gateway.pipeline.quality import Kind


@dataclass(frozen=True, slots=True)
class ChainSettings:
    """Band edges, window, and the rate for the conversion API (``None``: no resampling)."""

    low_hz: float
    high_hz: float
    notch_hz: float | None = None
    resample_hz: int | None = None
    window_s: float = 10.0
    overlap: float = 0.0
    max_gap_s: float = 1.0
    settle_s: float = 2.0
    block_s: float = 2.0

    @classmethod
    def defaults(cls, kind: Kind) -> ChainSettings:
        """PPG 0.5-8 Hz, ECG 0.5-40 Hz (the issue's defaults)."""
        return cls(0.5, 8.0) if kind == "ppg" else cls(0.5, 40.0)

    @classmethod
    def from_config(cls, kind: Kind, dsp: DspConfig, *, resample: bool = True) -> ChainSettings:
        """The settings of ``dsp`` (the config's ``dsp`` section) for ``kind``."""
        band = dsp.ppg if kind == "ppg" else dsp.ecg
        return cls(
            band.low_hz,
            band.high_hz,
            notch_hz=band.notch_hz,
            resample_hz=dsp.resample_hz if resample else None,
            window_s=dsp.window_s,
            overlap=dsp.overlap,
            max_gap_s=dsp.max_gap_s,
            settle_s=dsp.settle_s,
        )


@dataclass(frozen=True, slots=True)
class Window:
    """One analysis window of one segment of one device's stream."""

    device_id: str
    stream: str
    t0_s: float
    rate_hz: float
    samples: NDArray[np.float64]  # filtered, resampled if asked; (n, channels)
    sqi: float
    heart_rate_bpm: float | None
    intervals_ms: tuple[float, ...]


class SignalChain:
    """Streaming chain for one stream of ``n_channels`` at ``rate_hz`` (quality on channel 0)."""

    def __init__(
        self,
        kind: Kind,
        rate_hz: int,
        n_channels: int,
        settings: ChainSettings | None = None,
        *,
        device_id: str = "",
        stream: str = "",
    ) -> None:
        self.kind = kind
        self.device_id = device_id
        self.stream = stream or kind
        self.rate_hz = rate_hz
        self.settings = s = settings or ChainSettings.defaults(kind)
        self._grid = UniformGrid(rate_hz, n_channels, s.max_gap_s)
        self._filter = StreamingFilter(
            bandpass_sos(rate_hz, s.low_hz, s.high_hz, notch_hz=s.notch_hz), n_channels
        )
        self._resampler = (
            StreamingResampler(rate_hz, s.resample_hz, n_channels)
            if s.resample_hz and s.resample_hz != rate_hz
            else None
        )
        self._window_n = round(s.window_s * rate_hz)
        self._step_n = max(1, round(self._window_n * (1.0 - s.overlap)))
        self._settle_n = round(s.settle_s * rate_hz)
        self._block_n = max(1, round(s.block_s * rate_hz))
        self._pending_t: list[NDArray[np.float64]] = []
        self._pending_x: list[NDArray[np.float64]] = []
        self._pending_n = 0
        self._buffer = np.zeros((0, n_channels))
        self._resampled = np.zeros((0, n_channels))
        self._segment_t0 = 0.0
        self._in_index = 0
        self._out_index = 0
        self.segments = 0

    def push(self, times_s: NDArray[np.float64], samples: NDArray[np.float64]) -> list[Window]:
        """Feed samples with their times; return the windows completed.

        Notifications carry a few dozen samples; every numpy/scipy call costs tens of
        microseconds whatever its size, so input is processed in blocks of ``block_s``.
        """
        self._pending_t.append(np.asarray(times_s, dtype=np.float64))
        self._pending_x.append(np.asarray(samples, dtype=np.float64))
        self._pending_n += len(times_s)
        if self._pending_n < self._block_n:
            return []
        return self._process_pending()

    def _process_pending(self) -> list[Window]:
        if not self._pending_n:
            return []
        times_s, samples = np.concatenate(self._pending_t), np.concatenate(self._pending_x)
        self._pending_t, self._pending_x, self._pending_n = [], [], 0
        windows: list[Window] = []
        for chunk in self._grid.push(times_s, samples):
            if chunk.new_segment:
                self._restart(chunk.t0_s)
            filtered = self._filter.process(chunk.samples)
            if self._resampler is not None:
                self._resampled = np.vstack([self._resampled, self._resampler.process(filtered)])
            self._buffer = np.vstack([self._buffer, filtered])
            windows.extend(self._complete_windows())
        return windows

    def finish(self) -> list[Window]:
        """The end of a recording: return the windows still held back by the resampler.

        The resampler sees zeros after the last sample, as ``resample_poly`` does.
        """
        windows = self._process_pending()
        if self._resampler is None:
            return windows
        tail = np.zeros((self._resampler.history_len, self._buffer.shape[1]))
        self._resampled = np.vstack([self._resampled, self._resampler.process(tail)])
        return windows + self._complete_windows()

    def _restart(self, t0_s: float) -> None:
        self.segments += 1
        self._filter.reset()
        if self._resampler is not None:
            self._resampler.reset()
        self._segment_t0 = t0_s
        self._in_index = 0  # segment index of self._buffer[0]
        self._out_index = 0  # segment index (output rate) of self._resampled[0]
        self._buffer = self._buffer[:0]
        self._resampled = self._resampled[:0]

    def _out(self, in_index: int) -> int:
        r = self._resampler
        return in_index if r is None else in_index * r.up // r.down

    def _complete_windows(self) -> list[Window]:
        out: list[Window] = []
        n = self._window_n
        while True:
            # windows start after the filter's start-up transient
            if self._in_index < self._settle_n:
                drop = min(self._settle_n - self._in_index, len(self._buffer))
                self._buffer = self._buffer[drop:]
                self._in_index += drop
            if len(self._buffer) < n:
                return out
            start, stop = self._out(self._in_index), self._out(self._in_index + n)
            if self._resampler is not None and self._out_index + len(self._resampled) < stop:
                return out  # the resampler's output lags its input by its filter's delay
            window = self._buffer[:n]
            b = beats(window[:, 0], self.rate_hz)
            samples = (
                window
                if self._resampler is None
                else self._resampled[start - self._out_index : stop - self._out_index]
            )
            out.append(
                Window(
                    self.device_id,
                    self.stream,
                    self._segment_t0 + self._in_index / self.rate_hz,
                    float(self.settings.resample_hz or self.rate_hz),
                    samples,
                    quality.sqi(self.kind, window[:, 0]),
                    b.heart_rate_bpm,
                    b.intervals_ms,
                )
            )
            self._buffer = self._buffer[self._step_n :]
            self._in_index += self._step_n
            if self._resampler is not None:
                drop = self._out(self._in_index) - self._out_index
                self._resampled = self._resampled[drop:]
                self._out_index += drop
