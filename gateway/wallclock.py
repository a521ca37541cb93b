"""The gateway's time line: monotonic time plus an offset to UTC, and whether to trust it.

A Raspberry Pi has no real-time clock: after a power cut without network it boots with a stale
wall clock until NTP syncs it, and the wall clock then jumps. Links therefore stamp frames on
the monotonic clock; the daemon turns them into UTC with the offset of the moment and records
that offset and whether the kernel said the clock was synchronised (``adjtimex``, as
``timedatectl`` shows it). When the offset jumps, rows stamped with an untrusted offset are
corrected by the difference (exact: the monotonic clock did not move).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable

_STA_UNSYNC: Final = 0x0040
_TIME_ERROR: Final = 5
BOOT_ID_PATH: Final = Path("/proc/sys/kernel/random/boot_id")


@dataclass(frozen=True, slots=True)
class ClockReading:
    """One look at both clocks."""

    mono_s: float
    offset_s: float  # UTC = mono + offset
    synced: bool | None  # None: the kernel cannot say

    @property
    def wall_s(self) -> float:
        """UTC epoch seconds."""
        return self.mono_s + self.offset_s


class WallClock(Protocol):
    """Where the daemon reads time (tests inject one that jumps)."""

    boot_id: str

    def read(self) -> ClockReading:
        """Both clocks now."""
        ...

    def mono(self) -> float:
        """Monotonic seconds (frames are stamped on this)."""
        ...


class SystemClock:
    """``time.monotonic`` and ``time.time``, and the kernel's synchronisation flag."""

    def __init__(self) -> None:
        try:
            self.boot_id = BOOT_ID_PATH.read_text(encoding="ascii").strip()
        except OSError:
            self.boot_id = f"unknown-{time.time_ns()}"

    def mono(self) -> float:
        """Monotonic seconds (frames are stamped on this)."""
        return time.monotonic()

    def read(self) -> ClockReading:
        """Both clocks now, and whether the kernel trusts the wall clock."""
        mono = time.monotonic()
        return ClockReading(mono, time.time() - mono, kernel_synced())


class _Timex(ctypes.Structure):
    # struct timex (linux/timex.h): modes, offset, freq, maxerror, esterror, status, ... and
    # padding; only ``status`` is read. Longs are the platform's ``long``.
    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time_sec", ctypes.c_long),
        ("time_usec", ctypes.c_long),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        ("padding", ctypes.c_int * 11),
    ]


@functools.cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")  # runs ldconfig: once per process
    if name is None:
        return None
    try:
        return ctypes.CDLL(name, use_errno=True)
    except OSError:
        return None


def kernel_synced() -> bool | None:
    """Whether the kernel considers the system clock synchronised (NTP).

    As ``timedatectl``'s "System clock synchronized"; None where ``adjtimex`` is not there.
    """
    libc = _libc()
    if libc is None:
        return None
    timex = _Timex()  # modes 0: read only
    try:
        state = libc.adjtimex(ctypes.byref(timex))
    except AttributeError:
        return None
    if state < 0:
        return None
    return state != _TIME_ERROR and not timex.status & _STA_UNSYNC


@dataclass(frozen=True, slots=True)
class ClockJump:
    """The wall clock moved against the monotonic clock by more than the threshold."""

    at_mono_s: float
    offset_before_s: float
    offset_after_s: float
    synced: bool | None

    @property
    def delta_s(self) -> float:
        """How far UTC moved (positive: the clock was behind)."""
        return self.offset_after_s - self.offset_before_s


class ClockWatch:
    """Remembers the offset and reports a jump beyond ``threshold_s`` (slew is not a jump)."""

    def __init__(self, first: ClockReading, threshold_s: float = 2.0) -> None:
        self._offset_s = first.offset_s
        self._threshold_s = threshold_s

    def check(self, reading: ClockReading) -> ClockJump | None:
        """A jump since the last check, or None."""
        if abs(reading.offset_s - self._offset_s) <= self._threshold_s:
            return None
        jump = ClockJump(reading.mono_s, self._offset_s, reading.offset_s, reading.synced)
        self._offset_s = reading.offset_s
        return jump


class ShiftedClock:
    """A monotonic source plus an offset and a sync flag that can be changed.

    The simulator's clock for the daemon, and the clock tests make jump.
    """

    def __init__(
        self, mono: Callable[[], float], offset_s: float = 0.0, synced: bool | None = True
    ) -> None:
        self._mono = mono
        self.offset_s = offset_s
        self.synced = synced
        self.boot_id = f"sim-{time.time_ns()}"

    def mono(self) -> float:
        """The source's seconds."""
        return self._mono()

    def read(self) -> ClockReading:
        """The source, the current offset and flag."""
        return ClockReading(self._mono(), self.offset_s, self.synced)

    def set(self, offset_s: float, *, synced: bool | None) -> None:
        """Jump (what NTP does after boot, or a person setting the time)."""
        self.offset_s, self.synced = offset_s, synced
