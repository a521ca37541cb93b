"""A 12-lead ECG as a clinician reads it: A4 landscape at 25 mm/s and 10 mm/mV, PNG or PDF.

Three rows of four 2.5 s leads (I, aVR, V1, V4 / II, aVL, V2, V5 / III, aVF, V3, V6) and a
10 s lead II rhythm strip, each row after a 1 mV calibration pulse, every lead named, on 1 mm
and 5 mm grid; a header with the device, the time, the heart rate, speed and gain. Drawn with
matplotlib (the ``export`` extra), imported only when a sheet is drawn.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import numpy as np
from scipy.signal import find_peaks

from gateway.ecg_image import LAYOUT, LEADS

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from numpy.typing import NDArray

PAPER_MM: Final = (297.0, 210.0)  # A4 landscape
SPEED_MM_S: Final = 25.0
GAIN_MM_MV: Final = 10.0
CAL_MM: Final = 10.0  # the calibration pulse's column: 2 mm flat, 5 mm (0.2 s) at 1 mV, 3 mm
LEFT_MM: Final = 13.5
BOTTOM_MM: Final = 22.0
ROW_MM: Final = 40.0  # four rows of traces
GRID_MM: Final = (CAL_MM + 10 * SPEED_MM_S, 4 * ROW_MM)  # 260 x 160 mm of paper
MINOR, MAJOR, INK = "#f4c7c7", "#e08a8a", "#101010"


@dataclass(frozen=True, slots=True)
class Header:
    """What the sheet says it is: whose, when, and where it came from."""

    device_id: str
    time_utc: str  # ISO 8601
    source: str  # e.g. "converted from PPG (HeartVoice)"


def heart_rate_bpm(lead_ii_mv: NDArray[np.float64], rate_hz: float) -> float | None:
    """The rate from lead II's R peaks (median R-R), None without two clear beats."""
    if lead_ii_mv.size < 2 or not np.ptp(lead_ii_mv) > 0:
        return None
    centred = lead_ii_mv - np.median(lead_ii_mv)
    if abs(centred.min()) > abs(centred.max()):  # inverted QRS: the deepest points are R
        centred = -centred
    peaks, _ = find_peaks(centred, height=0.5 * centred.max(), distance=max(1, int(0.3 * rate_hz)))
    if peaks.size < 2:
        return None
    return float(60.0 * rate_hz / np.median(np.diff(peaks)))


def draw(leads_mv: Sequence[Sequence[float]], rate_hz: float, header: Header, out: Path) -> None:
    """Write the sheet to ``out``: PDF if its name ends ``.pdf``, else PNG (200 dpi)."""
    import matplotlib as mpl  # noqa: PLC0415 - the export extra, loaded only to draw

    mpl.use("Agg")
    mpl.rcParams["pdf.use14corefonts"] = True  # text stays text: searchable, copyable
    # it says, every time, that it matched Helvetica to another weight
    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)
    import matplotlib.pyplot as plt  # noqa: PLC0415

    signals = {
        name: np.asarray(lead, np.float64) for name, lead in zip(LEADS, leads_mv, strict=True)
    }
    width_mm, height_mm = PAPER_MM
    figure = plt.figure(figsize=(width_mm / 25.4, height_mm / 25.4))
    try:
        paper = figure.add_axes(
            (
                LEFT_MM / width_mm,
                BOTTOM_MM / height_mm,
                GRID_MM[0] / width_mm,
                GRID_MM[1] / height_mm,
            )
        )
        paper.set_xlim(0, GRID_MM[0])
        paper.set_ylim(0, GRID_MM[1])
        paper.set_axis_off()
        _grid(paper)
        for row, names in enumerate(LAYOUT):
            baseline = baseline_mm(row)
            _calibration(paper, baseline)
            for col, name in enumerate(names):
                start_s = 2.5 * col
                _trace(
                    paper, signals[name], rate_hz, start_s=start_s, length_s=2.5, baseline=baseline
                )
                _label(paper, name, CAL_MM + start_s * SPEED_MM_S, baseline)
                if col:  # where one lead ends and the next begins
                    x = CAL_MM + start_s * SPEED_MM_S
                    paper.plot([x, x], [baseline - 3, baseline + 3], color=INK, lw=0.8)
        rhythm = baseline_mm(3)
        _calibration(paper, rhythm)
        _trace(paper, signals["II"], rate_hz, start_s=0.0, length_s=10.0, baseline=rhythm)
        _label(paper, "II", CAL_MM, rhythm)
        _header(figure, header, heart_rate_bpm(signals["II"], rate_hz))
        figure.savefig(out, format="pdf" if out.suffix.lower() == ".pdf" else "png", dpi=200)
    finally:
        plt.close(figure)


def baseline_mm(row: int) -> float:
    """The zero line of a row (0 the top one; 3 the rhythm strip), in mm above the grid's foot."""
    return GRID_MM[1] - ROW_MM * (row + 0.5)


def _grid(paper: Axes) -> None:
    for mm in range(int(GRID_MM[0]) + 1):
        major = mm % 5 == 0
        paper.axvline(mm, color=MAJOR if major else MINOR, lw=0.6 if major else 0.3, zorder=0)
    for mm in range(int(GRID_MM[1]) + 1):
        major = mm % 5 == 0
        paper.axhline(mm, color=MAJOR if major else MINOR, lw=0.6 if major else 0.3, zorder=0)


def _calibration(paper: Axes, baseline: float) -> None:
    """1 mV for 0.2 s: 10 mm tall, 5 mm wide at 25 mm/s and 10 mm/mV."""
    xs = [0.0, 2.0, 2.0, 7.0, 7.0, CAL_MM]
    ys = [baseline, baseline, baseline + GAIN_MM_MV, baseline + GAIN_MM_MV, baseline, baseline]
    paper.plot(xs, ys, color=INK, lw=0.9, solid_joinstyle="miter")


def _trace(
    paper: Axes,
    signal: NDArray[np.float64],
    rate_hz: float,
    *,
    start_s: float,
    length_s: float,
    baseline: float,
) -> None:
    first, last = round(start_s * rate_hz), round((start_s + length_s) * rate_hz)
    part = signal[first:last]
    times = start_s + np.arange(part.size) / rate_hz
    xs = CAL_MM + times * SPEED_MM_S
    ys = baseline + part * GAIN_MM_MV
    paper.plot(xs, ys, color=INK, lw=0.8, antialiased=True, zorder=2)


def _label(paper: Axes, name: str, x_mm: float, baseline: float) -> None:
    paper.text(
        x_mm + 1.5, baseline + 11.0, name, fontsize=10, fontweight="bold", color=INK, zorder=3
    )


def _header(figure: Figure, header: Header, bpm: float | None) -> None:
    rate = f"{bpm:.0f} bpm" if bpm is not None else "rate not measurable"
    top = 1 - 8.0 / PAPER_MM[1]
    left = LEFT_MM / PAPER_MM[0]
    figure.text(left, top, f"{header.device_id}   {header.time_utc}   HR {rate}", fontsize=11)
    figure.text(
        1 - left,
        top,
        f"25 mm/s   10 mm/mV   {header.source}",
        fontsize=9,
        ha="right",
    )
