"""A share of one CPU core for a process tree: a cgroup with a CFS quota (issue 21).

cgroup v1 (``/sys/fs/cgroup/cpu``) or v2 (``cpu.max``); needs root. A short period (10 ms) spreads
the budget evenly instead of granting it in bursts, as a slower core would.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from types import TracebackType

V1 = Path("/sys/fs/cgroup/cpu")
V2 = Path("/sys/fs/cgroup")
PERIOD_US = 10_000


class CpuBudget:
    """``pct`` percent of one core for the processes added to it (100 or more: no limit)."""

    def __init__(self, pct: float, name: str | None = None) -> None:
        self.pct = pct
        v1 = (V1 / "cpu.cfs_quota_us").exists()
        root = V1 if v1 else V2
        self.v1 = v1
        self.path = root / (name or f"wgw-bench-{os.getpid()}")
        self.root = root

    def __enter__(self) -> CpuBudget:
        self.path.mkdir(exist_ok=True)
        quota = round(self.pct / 100 * PERIOD_US) if self.pct < 100 else -1
        if self.v1:
            (self.path / "cpu.cfs_period_us").write_text(str(PERIOD_US))
            (self.path / "cpu.cfs_quota_us").write_text(str(quota))
        else:
            (self.path / "cpu.max").write_text(f"{quota if quota > 0 else 'max'} {PERIOD_US}")
        return self

    def add(self, pid: int) -> None:
        """Move ``pid`` (all its threads) into the budget; its children are born in it."""
        (self.path / "cgroup.procs").write_text(str(pid))

    def throttled(self) -> tuple[int, float]:
        """Periods in which the budget ran out, and seconds held back, so far."""
        stat = dict(
            line.split() for line in (self.path / "cpu.stat").read_text().splitlines() if line
        )
        if self.v1:
            return int(stat.get("nr_throttled", 0)), int(stat.get("throttled_time", 0)) / 1e9
        return int(stat.get("nr_throttled", 0)), int(stat.get("throttled_usec", 0)) / 1e6

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for pid in (self.path / "cgroup.procs").read_text().split():
            with contextlib.suppress(OSError):  # it ended meanwhile
                (self.root / "cgroup.procs").write_text(pid)
        with contextlib.suppress(OSError):
            self.path.rmdir()
