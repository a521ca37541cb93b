"""The 12-lead sheet `wgw plot` draws: every lead named, calibration, header, PNG and PDF."""

from __future__ import annotations

import re
import zlib
from typing import TYPE_CHECKING

import numpy as np
from matplotlib import image

from gateway import ecg_sheet
from gateway.ecg_image import LAYOUT, LEADS

if TYPE_CHECKING:
    from pathlib import Path

RATE_HZ = 500.0
HEADER = ecg_sheet.Header("patch-7", "2026-12-06T15:00:00Z", "12 leads by HeartVoice")


def known_leads() -> list[list[float]]:
    """10 s of 12 leads at 75 bpm: narrow R waves of 0.3 to 0.85 mV (below the label boxes,
    which start 1.05 mV above the baseline)."""
    t = np.arange(int(10 * RATE_HZ)) / RATE_HZ
    beats = np.sum([np.exp(-(((t - b) / 0.012) ** 2)) for b in np.arange(0.4, 10, 0.8)], axis=0)
    return [list((0.3 + 0.05 * i) * beats) for i in range(12)]


def pdf_text(path: Path) -> list[str]:
    """The strings the PDF's content streams show (``(text) Tj``), in order."""
    shown: list[str] = []
    for stream in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", path.read_bytes(), re.S):
        try:
            content = zlib.decompress(stream.group(1))
        except zlib.error:
            continue  # a font or an image, not text
        shown += [s.decode("latin-1") for s in re.findall(rb"\((.*?)\) Tj", content)]
    return shown


def test_the_pdf_names_every_lead_and_states_speed_gain_and_rate(tmp_path: Path) -> None:
    """Test the PDF's text: the twelve leads in the sheet's order, lead II again for the
    rhythm strip, and a header with the device, the time, the rate, 25 mm/s and 10 mm/mV."""
    out = tmp_path / "sheet.pdf"
    ecg_sheet.draw(known_leads(), RATE_HZ, HEADER, out)
    text = pdf_text(out)
    labels = [t for t in text if t in LEADS]
    assert labels == [*(name for row in LAYOUT for name in row), "II"]
    header = " ".join(t for t in text if t not in LEADS)
    for expected in ("patch-7", "2026-12-06T15:00:00Z", "HR 75 bpm", "25 mm/s", "10 mm/mV"):
        assert expected in header


def test_the_png_has_ink_in_each_label_and_a_one_millivolt_calibration_pulse(
    tmp_path: Path,
) -> None:
    """Test the PNG at 200 dpi on A4: dark pixels where each lead's name is written, and each
    row's calibration pulse 10 mm (1 mV) tall at 25 mm/s and 10 mm/mV."""
    out = tmp_path / "sheet.png"
    ecg_sheet.draw(known_leads(), RATE_HZ, HEADER, out)
    pixels = image.imread(out)
    height, width = pixels.shape[:2]
    assert (width, height) == (2338, 1653)  # 297 x 210 mm at 200 dpi
    dark = pixels[:, :, :3].mean(axis=2) < 0.3
    px_per_mm = 200 / 25.4

    def at(x_mm: float, y_mm: float) -> tuple[int, int]:  # paper mm from the bottom left
        return round(height - y_mm * px_per_mm), round(x_mm * px_per_mm)

    for row in range(4):
        baseline = ecg_sheet.BOTTOM_MM + ecg_sheet.baseline_mm(row)
        columns = range(4) if row < 3 else range(1)
        for col in columns:
            x = ecg_sheet.LEFT_MM + ecg_sheet.CAL_MM + 62.5 * col + 1.5
            top, left = at(x, baseline + 15)
            bottom, right = at(x + 8, baseline + 10.5)
            assert dark[top:bottom, left:right].any(), (row, col)  # the lead's name
        # the pulse's top edge, 10 mm above the baseline between 2 and 7 mm
        pulse_row, pulse_start = at(ecg_sheet.LEFT_MM + 3, baseline + 10)
        _, pulse_end = at(ecg_sheet.LEFT_MM + 6, baseline + 10)
        assert dark[pulse_row - 2 : pulse_row + 3, pulse_start:pulse_end].any(axis=0).all()
        above, _ = at(0, baseline + 12)
        assert not dark[above, pulse_start:pulse_end].any()  # and not taller


def test_the_rate_comes_from_lead_ii_or_is_not_claimed() -> None:
    """Test the header's rate: 75 bpm from the R peaks, upright or inverted; none from a flat
    line."""
    lead_ii = np.asarray(known_leads()[1])
    assert ecg_sheet.heart_rate_bpm(lead_ii, RATE_HZ) == 75.0
    assert ecg_sheet.heart_rate_bpm(-lead_ii, RATE_HZ) == 75.0
    assert ecg_sheet.heart_rate_bpm(np.zeros(5000), RATE_HZ) is None
