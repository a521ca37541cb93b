"""The daemon with two probes (issue 21): what held the event loop, and every garbage collection.

Runs ``python -m gateway ARGS`` in this process with every event-loop callback timed (those
longer than ``WGW_PROBE_SLOW_MS``, default 15, are reported with the task and the line its
coroutine stopped at next), and ``gc.callbacks`` timing every collection. Each event is one
JSON line appended to ``WGW_PROBE_OUT``:
``{"t": epoch, "what": "slow", "ms": x, "name": "..."}`` or ``{"t": ..., "what": "gc",
"generation": g, "ms": x, "collected": n}``.

Usage: python bench/loop_probe.py run --config FILE  (what ``python -m gateway`` takes);
``install(path)`` probes the calling process (the field day's own, whose subscriber measures).
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import runpy
import sys
import time
from pathlib import Path
from typing import Any, TextIO

SLOW_S = float(os.environ.get("WGW_PROBE_SLOW_MS", "15")) / 1000
_out: list[TextIO] = []


def emit(**event: Any) -> None:
    _out[0].write(json.dumps({"t": round(time.time(), 3), **event}) + "\n")


_gc_started = [0.0]


def on_gc(phase: str, info: dict[str, int]) -> None:
    if phase == "start":
        _gc_started[0] = time.perf_counter()
        return
    ms = (time.perf_counter() - _gc_started[0]) * 1000
    if ms >= 1.0 or info["generation"] == 2:
        emit(what="gc", generation=info["generation"], ms=round(ms, 2), collected=info["collected"])


def name_of(handle: asyncio.Handle) -> str:
    """A task step by its task and where its coroutine stopped next; else the callback."""
    callback = handle._callback  # type: ignore[attr-defined]
    task = getattr(callback, "__self__", None)
    if isinstance(task, asyncio.Task):
        coro = task.get_coro()
        frame = getattr(coro, "cr_frame", None)
        where = f"{frame.f_code.co_filename}:{frame.f_lineno}" if frame else "done"
        return f"task {task.get_name()} {getattr(coro, '__qualname__', coro)} at {where}"
    return repr(callback)[:200]


_run = asyncio.Handle._run


def timed_run(self: asyncio.Handle) -> None:
    started = time.perf_counter()
    _run(self)
    seconds = time.perf_counter() - started
    if seconds >= SLOW_S:
        emit(what="slow", ms=round(1000 * seconds, 1), name=name_of(self))


def install(out: Path) -> None:
    """Probe this process from now on, into ``out``."""
    _out.append(out.open("a", buffering=1))
    asyncio.Handle._run = timed_run  # type: ignore[method-assign]
    gc.callbacks.append(on_gc)


if __name__ == "__main__":
    install(Path(os.environ.get("WGW_PROBE_OUT", "probe.jsonl")))
    if "WGW_PROBE_SWITCH_S" in os.environ:  # the GIL's switch interval (default 0.005)
        sys.setswitchinterval(float(os.environ["WGW_PROBE_SWITCH_S"]))
    sys.argv = ["gateway", *sys.argv[1:]]
    runpy.run_module("gateway", run_name="__main__", alter_sys=True)
