"""Lab Streaming Layer: every device stream an LSL outlet, the gateway's markers one more.

Each sample goes out at its own time on LSL's clock; a marker inlet, if configured, is stored
like ``wgw mark``. A live lane: readings are offered without waiting and pushed by one task;
when the queue is full the newest are dropped and counted. Outlets are made at a stream's
first reading (again when its rate or channels change), with the metadata LabRecorder and XDF
readers show, and a ``source_id`` that stays the same across restarts so a recorder picks
the stream up again.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from drivers.bounded import BoundedQueue, FullPolicy
from drivers.frames import GapMarker, VitalReading, WaveformChunk
from gateway.lsl_library import load
from gateway.sinks.lsl_streams import VITALS as VITAL_LAYOUTS
from gateway.sinks.lsl_streams import Layout, vital_samples, waveform_layout

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from gateway.config import LslConfig
    from gateway.readings import Reading

log = logging.getLogger(__name__)

MARKERS: Final = "markers"
_MARKERS_LAYOUT: Final = Layout("Markers", ("marker",), "text")
_RESOLVE_S: Final = 2.0  # how long one look for the marker inlet's stream lasts
_PULL_S: Final = 0.25  # how long one pull of the marker inlet waits


@dataclass(frozen=True, slots=True)
class LslStatistics:
    """What the LSL lane has done since start."""

    library: str  # "pylsl 1.18.6, liblsl 1.18" or "mne-lsl 1.14.0, liblsl 1.17"
    outlets: int
    pushed: int  # samples and markers
    dropped: int  # readings the full queue dropped
    markers_received: int  # from the marker inlet


@dataclass(frozen=True, slots=True)
class _Shape:
    """An outlet's stream: layout, rate (0: irregular) and the LSL channel format."""

    layout: Layout
    rate_hz: float
    channel_format: str  # "int32", "float32" or "string"


@dataclass(slots=True)
class _Outlet:
    outlet: Any
    rate_hz: float
    channels: int


class LslSink:
    """The outlets of one gateway, and the task that feeds them."""

    def __init__(
        self,
        config: LslConfig,
        gateway_id: str,
        *,
        mono_of_utc: Callable[[float], float],
        mono_now: Callable[[], float],
        device_facts: Callable[[str], dict[str, str]],
        store_marker: Callable[[str], Awaitable[object]],
    ) -> None:
        self._lsl = load()  # the config check loaded it (or refused to start)
        self._config = config
        self._gateway_id = gateway_id
        self._mono_of_utc = mono_of_utc
        self._mono_now = mono_now
        self._facts = device_facts
        self._store_marker = store_marker
        self._queue: BoundedQueue[Reading | tuple[float, str]] = BoundedQueue(
            config.queue_max, FullPolicy.DROP_NEWEST
        )
        self._outlets: dict[tuple[str, str], _Outlet] = {}
        self._pushed = 0
        self._markers_received = 0
        self.library = self._lsl.version
        if self._lsl.passed_over:
            log.info("LSL: %s (%s)", self.library, self._lsl.passed_over)
        else:
            log.info("LSL: %s", self.library)

    def _to_lsl(self, t_utc_s: float) -> float:
        """A UTC time of the gateway's on LSL's clock.

        Through the monotonic time line: a step of the wall clock moves nothing (in production
        the gateway's monotonic clock and LSL's are the same clock).
        """
        lsl_now: float = self._lsl.local_clock()
        return self._mono_of_utc(t_utc_s) + (lsl_now - self._mono_now())

    def offer(self, reading: Reading) -> None:
        """A reading just arrived: queued for its outlet if there is room (never waits)."""
        if reading.backfilled and not self._config.backfill:
            return
        self._queue.offer(reading)

    def marker(self, t_utc_s: float, text: str) -> None:
        """A marker of the gateway's (``wgw mark``, a session, a note) for the markers outlet."""
        self._queue.offer((t_utc_s, text))

    def statistics(self) -> LslStatistics:
        """A snapshot of the lane's counters."""
        return LslStatistics(
            self.library,
            len(self._outlets),
            self._pushed,
            self._queue.dropped,
            self._markers_received,
        )

    async def run(self) -> None:
        """Push what is offered, and read the marker inlet if one is configured.

        Until cancelled.
        """
        async with asyncio.TaskGroup() as tg:
            if self._config.marker_inlet:
                tg.create_task(self._read_inlet(self._config.marker_inlet), name="wgw.lsl.inlet")
            self._outlet(MARKERS, MARKERS, _Shape(_MARKERS_LAYOUT, 0.0, "string"), {})
            while True:
                item = await self._queue.get()
                try:
                    self._push(item)
                except Exception:
                    log.exception("LSL: a push failed")

    # --- pushing ----------------------------------------------------------------------------

    def _push(self, item: Reading | tuple[float, str]) -> None:
        if isinstance(item, tuple):
            self._push_marker(*item)
            return
        frame, labels = item.frame, item.labels.as_json()
        if isinstance(frame, WaveformChunk):
            n, channels = frame.samples.shape
            layout = waveform_layout(frame.stream, channels)
            shape = _Shape(layout, frame.sample_rate_hz, "int32")
            out = self._outlet(frame.device_id, frame.stream, shape, labels)
            t_last = frame.t0_s + (n - 1) / frame.sample_rate_hz
            if n == 1:  # mne-lsl warns at a chunk of one
                out.push_sample(frame.samples[0], self._to_lsl(t_last))
            else:
                out.push_chunk(frame.samples, self._to_lsl(t_last))
            self._pushed += n
        elif isinstance(frame, VitalReading):
            for stream, samples in vital_samples(frame).items():
                shape = _Shape(VITAL_LAYOUTS[stream], 0.0, "float32")
                out = self._outlet(frame.device_id, stream, shape, labels)
                for t, values in samples:
                    out.push_sample(np.asarray(values, np.float32), self._to_lsl(t))
                    self._pushed += 1
        elif isinstance(frame, GapMarker) and not frame.filled:
            text = (
                f"{frame.device_id} {frame.stream}: gap ({frame.reason},"
                f" {frame.t1_s - frame.t0_s:.1f} s)"
            )
            self._push_marker(frame.t0_s, text)

    def _push_marker(self, t_utc_s: float, text: str) -> None:
        self._outlets[(MARKERS, MARKERS)].outlet.push_sample([text], self._to_lsl(t_utc_s))
        self._pushed += 1

    def _outlet(self, device_id: str, stream: str, shape: _Shape, labels: dict[str, object]) -> Any:
        """The stream's outlet; made (again) when it is new or its shape changed."""
        key = (device_id, stream)
        layout = shape.layout
        known = self._outlets.get(key)
        if known is not None and (known.rate_hz, known.channels) == (
            shape.rate_hz,
            len(layout.labels),
        ):
            return known.outlet
        lsl = self._lsl
        name = f"wgw {MARKERS}" if stream == MARKERS else f"{device_id} {stream}"
        info, desc = lsl.stream_info(
            name,
            layout.lsl_type,
            channels=len(layout.labels),
            rate_hz=shape.rate_hz,
            channel_format=shape.channel_format,
            source_id=f"wgw/{self._gateway_id}/{device_id}/{stream}",
        )
        self._describe(desc, key, layout, labels)
        self._outlets[key] = _Outlet(lsl.outlet(info), shape.rate_hz, len(layout.labels))
        log.info("LSL: outlet %r (%s, %g Hz)", name, layout.lsl_type, shape.rate_hz)
        return self._outlets[key].outlet

    def _describe(
        self, desc: Any, key: tuple[str, str], layout: Layout, labels: dict[str, object]
    ) -> None:
        """Fill an outlet's description (LSL's XML element ``desc``)."""
        device_id, stream = key
        channels = desc.append_child("channels")
        for label in layout.labels:
            channel = channels.append_child("channel")
            channel.append_child_value("label", label)
            channel.append_child_value("unit", layout.unit)
            channel.append_child_value("type", layout.lsl_type)
        facts = self._facts(device_id) if stream != MARKERS else {}
        acquisition = desc.append_child("acquisition")
        for fact in ("manufacturer", "model", "serial", "firmware"):  # the link's device_info
            if facts.get(fact):
                acquisition.append_child_value(fact, facts[fact])
        gateway = desc.append_child("gateway")
        gateway.append_child_value("gateway_id", self._gateway_id)
        gateway.append_child_value("device_id", device_id)
        gateway.append_child_value("stream", stream)
        for label in ("participant_id", "session_id"):
            if labels.get(label) is not None:
                gateway.append_child_value(label, str(labels[label]))

    # --- the marker inlet -------------------------------------------------------------------

    async def _read_inlet(self, name: str) -> None:
        """Find the stream named ``name``, then store each marker it sends.

        It is looked for again when it goes.
        """
        lsl = self._lsl
        while True:
            found = await asyncio.to_thread(lsl.resolve, name, _RESOLVE_S)
            if not found:
                continue
            # the binding closes the inlet when it is dropped, which is also when a pull
            # still running in its thread (after a cancel) has finished with it
            inlet = lsl.inlet(found[0])
            log.info("LSL: reading markers from %r", name)
            while True:
                try:
                    sample, _ = await asyncio.to_thread(inlet.pull_sample, _PULL_S)
                except RuntimeError:  # LostError: the stream's source went
                    log.warning("LSL: the marker stream %r went; looking for it again", name)
                    break
                if sample is not None and len(sample):
                    self._markers_received += 1
                    await self._store_marker(str(sample[0]))
