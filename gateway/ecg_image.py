"""A 12-lead ECG drawn in the standard clinical layout, as a PNG, with numpy and zlib only.

Layout: 3 rows x 4 columns of 2.5 s (I, aVR, V1, V4 / II, aVL, V2, V5 / III, aVF, V3, V6) and a
10 s lead II rhythm strip, on paper at 25 mm/s and 10 mm/mV with 1 mm and 5 mm grid lines.
"""

from __future__ import annotations

import struct
import zlib
from typing import TYPE_CHECKING, Final

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Sequence

    from numpy.typing import NDArray

PX_PER_MM: Final = 4
PX_PER_S: Final = 25 * PX_PER_MM
PX_PER_MV: Final = 10 * PX_PER_MM
ROW_PX: Final = 38 * PX_PER_MM
MARGIN_PX: Final = 5 * PX_PER_MM
GRID: Final = ((220, 200, 200), (240, 180, 180))  # 1 mm, 5 mm lines (RGB)
TRACE: Final = (0, 0, 0)
LAYOUT: Final = (("I", "aVR", "V1", "V4"), ("II", "aVL", "V2", "V5"), ("III", "aVF", "V3", "V6"))
LEADS: Final = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")


def encode_png(rgb: NDArray[np.uint8]) -> bytes:
    """An 8-bit RGB image as PNG bytes (no filter, zlib level 6)."""
    height, width, _ = rgb.shape
    raw = np.hstack([np.zeros((height, 1), np.uint8), rgb.reshape(height, width * 3)]).tobytes()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 6))
        + chunk(b"IEND", b"")
    )


def draw_sheet(leads_mv: Sequence[Sequence[float]], rate_hz: float) -> bytes:
    """Draw 12 leads (I, II, III, aVR, aVL, aVF, V1-V6; at least 10 s each) as a PNG."""
    signals = {
        name: np.asarray(lead, dtype=np.float64) for name, lead in zip(LEADS, leads_mv, strict=True)
    }
    width = 2 * MARGIN_PX + 10 * PX_PER_S
    height = 2 * MARGIN_PX + 4 * ROW_PX
    image = np.full((height, width, 3), 255, np.uint8)
    _grid(image)
    for row, names in enumerate(LAYOUT):
        for col, name in enumerate(names):
            start = col * 2.5
            _trace(
                image,
                signals[name],
                rate_hz,
                start_s=start,
                length_s=2.5,
                x0=MARGIN_PX + col * 250,
                baseline=_baseline(row),
            )
    _trace(
        image,
        signals["II"],
        rate_hz,
        start_s=0.0,
        length_s=10.0,
        x0=MARGIN_PX,
        baseline=_baseline(3),
    )
    return encode_png(image)


def _baseline(row: int) -> int:
    return MARGIN_PX + row * ROW_PX + ROW_PX // 2


def _grid(image: NDArray[np.uint8]) -> None:
    height, width, _ = image.shape
    for mm in range(max(height, width) // PX_PER_MM + 1):
        color = GRID[1] if mm % 5 == 0 else GRID[0]
        p = mm * PX_PER_MM
        if p < width:
            image[:, p] = np.minimum(image[:, p], color)
        if p < height:
            image[p, :] = np.minimum(image[p, :], color)


def _trace(
    image: NDArray[np.uint8],
    signal: NDArray[np.float64],
    rate_hz: float,
    *,
    start_s: float,
    length_s: float,
    x0: int,
    baseline: int,
) -> None:
    columns = int(length_s * PX_PER_S)
    t = start_s + np.arange(columns + 1) / PX_PER_S
    values = np.interp(t * rate_hz, np.arange(len(signal)), signal)
    ys = np.clip(baseline - np.round(values * PX_PER_MV).astype(int), 0, image.shape[0] - 1)
    for i in range(columns):
        top, bottom = sorted((ys[i], ys[i + 1]))
        image[top : bottom + 1, x0 + i] = TRACE
