"""Simulated device models with real GATT tables, rates and packet sizes.

- ``watch``: heart rate with RR, continuous SpO2, temperature, blood pressure spot readings,
  battery, and a raw 4-channel PMD PPG stream.
- ``strap`` (Polar H10-like): heart rate with RR, battery, PMD ECG 130 Hz raw, 73 samples a
  notification (the H10's frame at its usual MTU).
- ``armband`` (Polar Verity Sense-like): heart rate, battery, PMD PPG 4 channels at 55 or
  135 Hz, delta-compressed as the Verity sends it.
- ``patch``: a 3-lead ECG patch at 500 Hz over a PMD-style delta-compressed stream.
- ``cuff``: an ambulatory blood pressure cuff: a measurement every 15 minutes, 500 kept as
  records (RACP, by sequence number), its clock readable (Current Time), battery.
- ``pinetime``: a PineTime running InfiniTime: heart rate (once a second), battery,
  and InfiniTime's Motion Service: the step count (notified as it changes) and raw
  accelerometer X/Y/Z (notified ten times a second).
- ``movesense``: a Movesense sensor running Movesense's ``gatt_sensordata_app``: battery, and
  its GATT SensorData Protocol (ECG at 125-512 Hz, IMU6/IMU9 at 13-1666 Hz, HR with RR,
  temperature), each resource streamed once a central subscribes to it by path.
- ``oximeter``: a spot-check pulse oximeter: a spot-check every 10 minutes, the last 100 kept
  and given back over RACP as the Pulse Oximeter Service does (all records or none: no
  filter, so a collector goes by their time), its clock readable, battery.

Devices that keep records keep measuring while nobody listens, and give their records back
over the Record Access Control Point.

Size: the models share one ``SimDevice`` (GATT table, tick loop, faults, records); each model
is a preset of it, so the class is long and the models are short.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Final, Literal

import numpy as np

from drivers.errors import DecodeError
from drivers.gatt import infinitime, racp, uuids
from drivers.gatt.battery import encode_battery_level
from drivers.gatt.blood_pressure import BloodPressureMeasurement, encode_blood_pressure_measurement
from drivers.gatt.bp_record import BloodPressureRecord, encode_blood_pressure_record
from drivers.gatt.current_time import CurrentTime, decode_current_time, encode_current_time
from drivers.gatt.fields import DateTime
from drivers.gatt.heart_rate import HeartRateMeasurement, encode_heart_rate_measurement
from drivers.gatt.ieee11073 import MedFloat
from drivers.gatt.plx import (
    PlxContinuous,
    PlxSpotCheck,
    encode_plx_continuous,
    encode_plx_spot_check,
)
from drivers.gatt.temperature import TemperatureMeasurement, encode_temperature_measurement
from drivers.movesense import gsp
from drivers.polar import pmd, pmd_settings, ppi
from drivers.sim import signals
from drivers.sim.movesense import STREAMS as GSP_STREAMS
from drivers.sim.movesense import GspServer
from drivers.sim.peripheral import (
    SUPERVISION_TIMEOUT,
    AttError,
    Security,
    SimCharacteristic,
    SimPeripheral,
    SimService,
    StreamCounters,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from numpy.typing import NDArray

Model = Literal["watch", "strap", "armband", "patch", "cuff", "oximeter", "pinetime", "movesense"]

_STATUS_SUCCESS: Final = 0
_STATUS_NOT_SUPPORTED: Final = 3
_STATUS_INVALID_SAMPLE_RATE: Final = 8
_STATUS_INVALID_RANGE: Final = 9
_STATUS_INVALID_CHANNELS: Final = 11


@dataclass(frozen=True, slots=True)
class PmdStreamSpec:
    """A PMD stream the device offers, and how it packs samples.

    Its settings: one rate, one resolution, one channel count, ranges to choose from; its factor.
    """

    measurement: str
    sample_rate_hz: int
    channels: int
    resolution_bits: int
    samples_per_packet: int
    compressed: bool
    ranges: tuple[int, ...] = ()
    factor: float = 1.0  # said in the answer to a start, as Polar's gyroscopes do

    def settings(self) -> pmd.StreamSettings:
        """The settings a central must ask for."""
        return pmd.StreamSettings(
            self.measurement,
            self.sample_rate_hz,
            self.resolution_bits,
            self.channels,
            max(self.ranges) if self.ranges else None,
        )

    def offer(self) -> pmd_settings.Offer:
        """What the device answers GET_MEASUREMENT_SETTINGS with."""
        offer: pmd_settings.Offer = {
            "sample_rate_hz": (self.sample_rate_hz,),
            "resolution_bits": (self.resolution_bits,),
        }
        if self.ranges:
            offer["range"] = self.ranges
        offer["channels"] = (self.channels,)
        return offer


@dataclass(frozen=True, slots=True)
class ScheduledFault:
    """A fault the device plays on its own clock, ``at_s`` after start, then every ``every_s``.

    ``link_drop``: the link drops (supervision timeout); ``out_of_range``: the wearer walks away
    for ``duration_s``; ``malformed``: a share ``rate`` of packets goes out corrupted for
    ``duration_s``; ``refuse_connects``: the next ``count`` connection requests go unanswered.
    """

    kind: Literal["link_drop", "out_of_range", "malformed", "refuse_connects"]
    at_s: float
    every_s: float | None = None
    duration_s: float = 0.0
    rate: float = 0.2
    count: int = 3


@dataclass(frozen=True, slots=True)
class SimDeviceSpec:
    """How a simulated device behaves; :func:`preset` fills in a model's defaults."""

    model: Model
    address: str
    name: str
    seed: int = 1
    heart_rate_interval_s: float | None = 1.0
    spo2_interval_s: float | None = None
    spot_check_interval_s: float | None = None
    temperature_interval_s: float | None = None
    blood_pressure_interval_s: float | None = None
    battery_pct: float = 90.0
    battery_drain_pct_per_h: float = 2.0
    pmd: PmdStreamSpec | None = None  # the device's main stream
    more_pmd: tuple[PmdStreamSpec, ...] = ()  # offered too, streamed once a central starts them
    malformed_rate: float = 0.0
    clock_offset_s: float = 0.0
    # switched on this long (simulated) after the world starts: devices switched on together
    # measure in lockstep, every one's reading in the same millisecond, as real ones never do
    start_delay_s: float = 0.0
    faults: tuple[ScheduledFault, ...] = ()
    # records the device remembers (RACP): blood pressure readings if it measures them, else
    # spot-checks; 0: none
    records_kept: int = 0
    record_interval_s: float = 0.01  # between records sent back over RACP
    max_mtu: int = 247  # the largest ATT MTU the device takes (frames are fitted to the link's)
    security: Security = "none"  # what its health services need (see SimPeripheral)
    passkey: int = 123456  # shown by the device when ``security`` is "passkey"
    steps_interval_s: float | None = None  # InfiniTime's Motion Service: a new step count
    motion_interval_s: float | None = None  # and raw accelerometer values
    clock_settable: bool = False  # its Current Time takes writes (a PineTime's companion app)
    ppi_interval_s: float | None = None  # PMD PPI (Verity Sense): a frame this often, once started
    movesense: bool = False  # Movesense's GATT SensorData Protocol
    pmd_answers: bool = True  # False: its PMD control point never answers (takes commands)


PRESETS: Final[dict[Model, dict[str, object]]] = {
    "watch": {
        "spo2_interval_s": 1.0,
        "temperature_interval_s": 60.0,
        "blood_pressure_interval_s": 300.0,
        "records_kept": 500,
        "pmd": PmdStreamSpec("ppg", 55, 4, 22, 11, compressed=False),
    },
    # H10: ECG, and an accelerometer (2-8 G); Verity Sense: PPG, PPI, accelerometer, gyroscope
    "strap": {
        "pmd": PmdStreamSpec("ecg", 130, 1, 14, 73, compressed=False),
        "more_pmd": (PmdStreamSpec("acc", 25, 3, 16, 12, compressed=True, ranges=(2, 4, 8)),),
    },
    "armband": {
        "pmd": PmdStreamSpec("ppg", 135, 4, 22, 36, compressed=True),
        "more_pmd": (
            PmdStreamSpec("acc", 52, 3, 16, 24, compressed=True, ranges=(8,)),
            PmdStreamSpec(
                "gyro", 52, 3, 16, 24, compressed=True, ranges=(250, 500, 1000, 2000), factor=0.061
            ),
        ),
        "ppi_interval_s": 1.0,
    },
    "patch": {"pmd": PmdStreamSpec("ecg", 500, 3, 24, 100, compressed=True)},
    "cuff": {
        "heart_rate_interval_s": None,
        "blood_pressure_interval_s": 900.0,
        "records_kept": 500,
        "battery_drain_pct_per_h": 0.5,
    },
    "pinetime": {"steps_interval_s": 5.0, "motion_interval_s": 0.1, "clock_settable": True},
    "movesense": {"heart_rate_interval_s": None, "movesense": True, "battery_drain_pct_per_h": 1.0},
    "oximeter": {
        "heart_rate_interval_s": None,
        "spot_check_interval_s": 600.0,
        "records_kept": 100,
        "battery_drain_pct_per_h": 0.5,
    },
}


def preset(model: Model, address: str, name: str, **overrides: object) -> SimDeviceSpec:
    """A model's spec with ``overrides`` applied (e.g. ``seed``, ``heart_rate_interval_s``)."""
    base = SimDeviceSpec(model, address, name)
    return replace(base, **{**PRESETS[model], **overrides})  # type: ignore[arg-type]


# The most one notification carries: ATT MTU 247 (what BlueZ, and bumble's central here,
# exchange with a BLE 4.2+ device) less 3. A link with a smaller MTU gets shorter frames.
NOTIFY_MAX_BYTES: Final = 244


def frame_samples(p: PmdStreamSpec, max_bytes: int) -> int:
    """Samples a notification carries: the packet, halved until its largest frame fits.

    The largest: every delta at full width. Devices fit their frames to the MTU this way.
    """
    n = p.samples_per_packet
    while n > 1 and _largest_frame(p, n) > max_bytes:
        n = (n + 1) // 2
    return n


def _largest_frame(p: PmdStreamSpec, n: int) -> int:
    low, high = -(1 << (p.resolution_bits - 1)), (1 << (p.resolution_bits - 1)) - 1
    column = np.where(np.arange(n) % 2 == 0, low, high)
    samples = np.repeat(column[:, None], p.channels, axis=1).astype(np.int32)
    frame_type = pmd.COMPRESSED if p.compressed else 0
    frame = pmd.PmdFrame(p.measurement, frame_type, 0, samples)
    return len(pmd.encode_pmd_data(frame, resolution_bits=p.resolution_bits))


def _refusal(own: PmdStreamSpec, settings: dict[int, int]) -> int | None:
    """The status a start with ``settings`` is refused with; None: it is taken."""
    if settings.get(pmd.SETTING_SAMPLE_RATE) != own.sample_rate_hz:
        return _STATUS_INVALID_SAMPLE_RATE
    if settings.get(pmd.SETTING_CHANNELS) != own.channels:
        return _STATUS_INVALID_CHANNELS
    if own.ranges and settings.get(pmd.SETTING_RANGE) not in own.ranges:
        return _STATUS_INVALID_RANGE
    return None


@dataclass(slots=True)
class _PmdState:
    spec: PmdStreamSpec
    frame_samples: int  # samples a tick takes (the most a notification carries, at MTU 247)
    fitted: dict[int, int] = field(default_factory=dict)  # ATT MTU -> samples a notification
    streaming: bool = False
    measured: bool = False  # from power-on (the main stream), or once a central starts it
    started_s: float = 0.0  # simulated time of the last start
    counters: StreamCounters = field(default_factory=StreamCounters)


class SimDevice(SimPeripheral):
    """One simulated wearable, built from a :class:`SimDeviceSpec`."""

    def __init__(self, spec: SimDeviceSpec) -> None:
        super().__init__(spec.address, spec.name, seed=spec.seed)
        self.spec = spec
        self.heart = signals.HeartModel(spec.seed)
        self.battery_pct = spec.battery_pct
        self.steps = 0  # the Motion Service's count (pinetime)
        self.clock_offset_s = spec.clock_offset_s  # its clock less the true time
        self.clock_sets = 0  # writes of its Current Time
        self.ppi_streaming = False  # PMD PPI started by the central
        self.malformed_rate = spec.malformed_rate
        self.max_mtu = spec.max_mtu
        self.start_delay_s = spec.start_delay_s
        self.security = spec.security
        self.passkey = spec.passkey
        self.faults_played: dict[str, int] = {}
        self.counters: dict[str, StreamCounters] = {}
        self._pmd = {
            p.measurement: _PmdState(p, frame_samples(p, NOTIFY_MAX_BYTES), measured=p is spec.pmd)
            for p in (*((spec.pmd,) if spec.pmd else ()), *spec.more_pmd)
        }
        # what the cuff remembers, oldest first; sequence numbers count every measurement
        self.records: deque[BloodPressureRecord] = deque(maxlen=spec.records_kept or None)
        self.spot_checks: deque[PlxSpotCheck] = deque(maxlen=spec.records_kept or None)
        self._next_sequence = 0
        self._transfer = 0  # the running RACP transfer's number; 0: none
        self._transfers = 0
        self.record_requests = 0  # control-point writes received
        self._corrupt_sequences: set[int] = set()
        self._drop_on_read: str | None = None
        self._drop_on_write: tuple[str, int] | None = None  # (characteristic, HCI reason)
        self.record_ops: tuple[racp.OpCode, ...] = (
            racp.OpCode.REPORT_RECORDS,
            racp.OpCode.REPORT_NUMBER,
        )
        self._gsp = (
            GspServer(self.heart, self.send, self.indicate, self.every, self.counters)
            if spec.movesense
            else None
        )
        self.services = self._gatt_table()
        self.strings = {
            uuids.MANUFACTURER_NAME: "wearable-gateway simulator",
            uuids.MODEL_NUMBER: spec.model,
            uuids.SERIAL_NUMBER: spec.address.replace(":", ""),
            uuids.FIRMWARE_REVISION: "1.0.0",
        }

    def _gatt_table(self) -> tuple[SimService, ...]:
        s = self.spec
        table: list[SimService] = []

        def service(uuid: str, *chars: tuple[str, tuple[str, ...]]) -> None:
            table.append(SimService(uuid, tuple(SimCharacteristic(c, p) for c, p in chars)))  # type: ignore[arg-type]

        if s.heart_rate_interval_s:
            service(uuids.HEART_RATE_SERVICE, (uuids.HEART_RATE_MEASUREMENT, ("notify",)))
            self.counters["heart_rate"] = StreamCounters()
        plx: list[tuple[str, tuple[str, ...]]] = []
        if s.spot_check_interval_s:
            plx.append((uuids.PLX_SPOT_CHECK, ("indicate",)))
            if self._keeps_spot_checks:
                plx.append((uuids.RECORD_ACCESS_CONTROL_POINT, ("write", "indicate")))
            self.counters["spo2_spot"] = StreamCounters()
        if s.spo2_interval_s:
            plx.append((uuids.PLX_CONTINUOUS, ("notify",)))
            self.counters["spo2"] = StreamCounters()
        if plx:
            service(uuids.PULSE_OXIMETER_SERVICE, *plx)
        if s.temperature_interval_s:
            service(
                uuids.HEALTH_THERMOMETER_SERVICE, (uuids.TEMPERATURE_MEASUREMENT, ("indicate",))
            )
            self.counters["temperature"] = StreamCounters()
        if s.blood_pressure_interval_s:
            stored = (
                (
                    (uuids.RECORD_ACCESS_CONTROL_POINT, ("write", "indicate")),
                    (uuids.BLOOD_PRESSURE_RECORD, ("indicate",)),
                )
                if s.records_kept
                else ()
            )
            service(
                uuids.BLOOD_PRESSURE_SERVICE,
                (uuids.BLOOD_PRESSURE_MEASUREMENT, ("indicate",)),
                *stored,
            )
            self.counters["blood_pressure"] = StreamCounters()
        if self._gsp is not None:
            table.append(self._gsp.service())
            self.counters.update({stream: StreamCounters() for stream in GSP_STREAMS})
        motion = self._motion_service()
        if motion is not None:
            table.append(motion)
        if s.records_kept:  # a collector places the records on its own time line by this
            service(uuids.CURRENT_TIME_SERVICE, (uuids.CURRENT_TIME, ("read",)))
        elif s.clock_settable:
            service(uuids.CURRENT_TIME_SERVICE, (uuids.CURRENT_TIME, ("read", "write")))
        service(uuids.BATTERY_SERVICE, (uuids.BATTERY_LEVEL, ("read", "notify")))
        self.counters["battery"] = StreamCounters()
        service(
            uuids.DEVICE_INFORMATION_SERVICE,
            *(
                (u, ("read",))
                for u in (
                    uuids.MANUFACTURER_NAME,
                    uuids.MODEL_NUMBER,
                    uuids.SERIAL_NUMBER,
                    uuids.FIRMWARE_REVISION,
                )
            ),
        )
        if self._pmd:
            table.append(self._pmd_service())
        return tuple(table)

    def _pmd_service(self) -> SimService:
        """Polar's PMD service, for the streams the device offers."""
        for measurement, state in self._pmd.items():
            self.counters[measurement] = state.counters
        if self.spec.ppi_interval_s:
            self.counters["ppi"] = StreamCounters()
        chars = (
            SimCharacteristic(pmd.PMD_CONTROL_POINT, ("read", "write", "indicate")),
            SimCharacteristic(pmd.PMD_DATA, ("notify",)),
        )
        return SimService(pmd.PMD_SERVICE, chars)

    def _motion_service(self) -> SimService | None:
        """InfiniTime's Motion Service, for the streams the device has."""
        chars = []
        for interval_s, uuid, stream in (
            (self.spec.steps_interval_s, infinitime.STEP_COUNT, "steps"),
            (self.spec.motion_interval_s, infinitime.MOTION_VALUES, "motion"),
        ):
            if interval_s:
                chars.append(SimCharacteristic(uuid, ("read", "notify")))
                self.counters[stream] = StreamCounters()
        return SimService(infinitime.MOTION_SERVICE, tuple(chars)) if chars else None

    # --- timers ---------------------------------------------------------------------------

    def on_start(self) -> None:
        """Start one timer per measurement."""
        s = self.spec
        ticks: list[tuple[float | None, Callable[[int], None]]] = [
            (s.heart_rate_interval_s, self._heart_rate_tick),
            (s.spo2_interval_s, self._spo2_tick),
            (s.spot_check_interval_s, self._spot_check_tick),
            (s.temperature_interval_s, self._temperature_tick),
            (s.blood_pressure_interval_s, self._blood_pressure_tick),
            (s.steps_interval_s, self._steps_tick),
            (s.motion_interval_s, self._motion_tick),
            (s.ppi_interval_s if self._pmd else None, self._ppi_tick),
            (60.0, self._battery_tick),
        ]
        for state in self._pmd.values():
            pmd_tick = functools.partial(self._pmd_tick, state)
            ticks.append((state.frame_samples / state.spec.sample_rate_hz, pmd_tick))
        for interval_s, tick in ticks:
            if interval_s:
                self.every(interval_s, tick)
        for fault in s.faults:
            self.after(fault.at_s, lambda f=fault: self._play(f))  # type: ignore[misc]

    def _play(self, fault: ScheduledFault) -> None:
        """One scheduled fault, and its next time."""
        if fault.kind == "link_drop":
            self.drop_link()
        elif fault.kind == "out_of_range":
            self.go_out_of_range(fault.duration_s)
        elif fault.kind == "refuse_connects":
            self.refuse_next_connects += fault.count
        else:
            self.malformed_rate = fault.rate
            self.after(fault.duration_s, self._end_malformed)
        self.faults_played[fault.kind] = self.faults_played.get(fault.kind, 0) + 1
        if fault.every_s:
            self.after(fault.every_s, lambda: self._play(fault))

    def _end_malformed(self) -> None:
        self.malformed_rate = self.spec.malformed_rate

    def _t(self, k: int, interval_s: float) -> float:
        return (k + 1) * interval_s

    def _heart_rate_tick(self, k: int) -> None:
        assert self.spec.heart_rate_interval_s is not None
        t = self._t(k, self.spec.heart_rate_interval_s)
        bpm = round(self.heart.heart_rate_bpm(t))
        rr_1024 = round(self.heart.rr_interval_s(t) * 1024)
        payload = encode_heart_rate_measurement(
            HeartRateMeasurement(bpm, "detected", None, (rr_1024,))
        )
        counters = self.counters["heart_rate"]
        before = counters.sent
        self.send(uuids.HEART_RATE_MEASUREMENT, payload, counters, 1)
        if counters.sent > before:
            counters.values_sent.append(bpm)

    def _steps_tick(self, k: int) -> None:
        assert self.spec.steps_interval_s is not None
        t = self._t(k, self.spec.steps_interval_s)
        self.steps = round(signals.steps(t))
        counters = self.counters["steps"]
        before = counters.sent
        self.send(infinitime.STEP_COUNT, infinitime.encode_step_count(self.steps), counters, 1)
        if counters.sent > before:
            counters.values_sent.append(self.steps)

    def _motion_tick(self, k: int) -> None:
        assert self.spec.motion_interval_s is not None
        x, y, z = signals.wrist_acceleration(self._t(k, self.spec.motion_interval_s))
        payload = infinitime.encode_motion_values(infinitime.MotionValues(x, y, z))
        self.send(infinitime.MOTION_VALUES, payload, self.counters["motion"], 1)

    def _ppi_tick(self, k: int) -> None:
        """One PPI frame: the beat's interval as the Verity Sense reports it, when started."""
        if not self.ppi_streaming:
            return
        assert self.spec.ppi_interval_s is not None
        t = self._t(k, self.spec.ppi_interval_s)
        interval_ms = round(self.heart.rr_interval_s(t) * 1000)
        sample = ppi.PpiSample(
            round(self.heart.heart_rate_bpm(t)), interval_ms, 10, False, True, True
        )
        counters = self.counters["ppi"]
        before = counters.sent
        self.send(pmd.PMD_DATA, ppi.encode_ppi_frame((sample,)), counters, 1)
        if counters.sent > before:
            counters.values_sent.append(interval_ms)

    def _spo2_tick(self, k: int) -> None:
        assert self.spec.spo2_interval_s is not None
        t = self._t(k, self.spec.spo2_interval_s)
        spo2 = MedFloat(round(signals.spo2_pct(t) * 10), -1)
        pr = MedFloat(round(self.heart.heart_rate_bpm(t)), 0)
        self.send(
            uuids.PLX_CONTINUOUS,
            encode_plx_continuous(PlxContinuous(spo2, pr)),
            self.counters["spo2"],
            1,
        )

    @property
    def _keeps_spot_checks(self) -> bool:
        return bool(self.spec.records_kept and not self.spec.blood_pressure_interval_s)

    def _spot_check_tick(self, k: int) -> None:
        assert self.spec.spot_check_interval_s is not None
        t = self._t(k, self.spec.spot_check_interval_s)
        reading = PlxSpotCheck(
            MedFloat(round(signals.spo2_pct(t) * 10), -1),
            MedFloat(round(self.heart.heart_rate_bpm(t)), 0),
            timestamp=self._device_date_time(t),
        )
        if self._keeps_spot_checks:
            self.spot_checks.append(reading)
        self.send(
            uuids.PLX_SPOT_CHECK,
            encode_plx_spot_check(reading),
            self.counters["spo2_spot"],
            1,
        )

    def _temperature_tick(self, k: int) -> None:
        assert self.spec.temperature_interval_s is not None
        t = self._t(k, self.spec.temperature_interval_s)
        reading = TemperatureMeasurement(
            MedFloat(round(signals.temperature_c(t) * 100), -2, 32), "C", None, 4
        )
        self.send(
            uuids.TEMPERATURE_MEASUREMENT,
            encode_temperature_measurement(reading),
            self.counters["temperature"],
            1,
        )

    def _blood_pressure_tick(self, k: int) -> None:
        assert self.spec.blood_pressure_interval_s is not None
        t = self._t(k, self.spec.blood_pressure_interval_s)
        systolic, diastolic = signals.blood_pressure_mmhg(t)
        mean = diastolic + (systolic - diastolic) / 3.0
        reading = BloodPressureMeasurement(
            MedFloat(round(systolic), 0),
            MedFloat(round(diastolic), 0),
            MedFloat(round(mean), 0),
            timestamp=self._device_date_time(t),
            pulse_rate_bpm=MedFloat(round(self.heart.heart_rate_bpm(t)), 0),
        )
        if self.spec.records_kept:
            self.records.append(BloodPressureRecord(self._next_sequence, reading))
            self._next_sequence = (self._next_sequence + 1) & 0xFFFF
        self.send(
            uuids.BLOOD_PRESSURE_MEASUREMENT,
            encode_blood_pressure_measurement(reading),
            self.counters["blood_pressure"],
            1,
        )

    def _battery_tick(self, k: int) -> None:
        level_before = round(self.battery_pct)
        self.battery_pct = max(0.0, self.battery_pct - self.spec.battery_drain_pct_per_h / 60.0)
        if round(self.battery_pct) != level_before:
            self.send(
                uuids.BATTERY_LEVEL,
                encode_battery_level(round(self.battery_pct)),
                self.counters["battery"],
                1,
            )

    def _pmd_tick(self, state: _PmdState, k: int) -> None:
        if not state.measured:  # a stream no central asked for
            return
        p = state.spec
        n = state.frame_samples
        t = (np.arange(k * n, (k + 1) * n, dtype=np.float64) + 1.0) / p.sample_rate_hz
        samples = self._pmd_samples(p, t)
        # A tick the loop ran late, after a new start, is for a time the stream was stopped:
        # a device never sends samples it was not taking.
        if not state.streaming or self.started_utc_s + float(t[-1]) < state.started_s:
            state.counters.produced += n
            state.counters.lost_link_down += n
            return
        # A link with a smaller MTU gets the same samples in shorter frames, as Polar's do.
        fitted = state.fitted.get(self.mtu)
        if fitted is None:
            fitted = state.fitted[self.mtu] = frame_samples(p, self.mtu - 3)
        frame_type = pmd.COMPRESSED if p.compressed else 0
        for start in range(0, n, fitted):
            part = slice(start, start + fitted)
            # The device's clock stamps the nominal time of a frame's last sample.
            device_time_s = self.started_utc_s + float(t[part][-1]) + self.clock_offset_s
            timestamp_ns = int((device_time_s - pmd.POLAR_EPOCH_S) * 1e9)
            frame = pmd.PmdFrame(p.measurement, frame_type, timestamp_ns, samples[part])
            payload = pmd.encode_pmd_data(frame, resolution_bits=p.resolution_bits)
            self.send(pmd.PMD_DATA, payload, state.counters, len(samples[part]))

    def _pmd_samples(self, p: PmdStreamSpec, t: NDArray[np.float64]) -> NDArray[np.int32]:
        if p.measurement == "ecg":
            microvolts = self.heart.ecg_mv(t, p.channels) * 1000.0
            return (microvolts + self.heart.noise(microvolts.shape, 8.0)).astype(np.int32)
        if p.measurement in ("acc", "gyro", "mag"):  # at rest: gravity on z (mG), no turning
            at_rest = np.array([0.0, 0.0, 1000.0 if p.measurement == "acc" else 0.0])
            noise = self.heart.noise((len(t), p.channels), 6.0)
            return (at_rest[: p.channels] + noise).astype(np.int32)
        wave = self.heart.pulse_wave(t)
        gains = np.array([30000.0, 22000.0, 15000.0, 0.0])[: p.channels]
        offsets = np.array([250000.0, 210000.0, 180000.0, 4000.0])[: p.channels]
        noise = self.heart.noise((len(t), p.channels), 150.0)
        return (offsets + np.outer(wave, gains) + noise).astype(np.int32)

    def _device_date_time(self, t: float) -> DateTime:
        """The device's stamp for a reading taken ``t`` simulated seconds after start.

        Nominal, not the loop's time: a timer the loop ran late must not stamp two readings
        with one second (a busy loop at high speed fired three at once).
        """
        return self._current_time(self.started_utc_s + t).date_time

    def _current_time(self, utc_s: float | None = None) -> CurrentTime:
        now_s = (self.clock.now_s() if utc_s is None else utc_s) + self.clock_offset_s
        tm = time.gmtime(now_s)
        return CurrentTime(
            DateTime(tm.tm_year, tm.tm_mon, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec),
            tm.tm_wday + 1,
            int(now_s % 1.0 * 256),
        )

    # --- GATT -----------------------------------------------------------------------------

    def malform(self, uuid: str, payload: bytes) -> bytes:
        """Corruptions each decoder detects: an unknown PMD frame type, a short measurement."""
        if uuid == pmd.PMD_DATA:
            return payload[:9] + bytes([0x7F]) + payload[10:]
        if uuid == uuids.HEART_RATE_MEASUREMENT:
            return bytes([payload[0] | 0x01]) + payload[1:2]  # uint16 announced, one byte sent
        if uuid == uuids.BATTERY_LEVEL:
            return b"\xff"
        return payload[:2]  # flags and half an SFLOAT

    def read(self, uuid: str) -> bytes:
        """Battery level, Device Information strings and the device's clock."""
        if uuid == self._drop_on_read:
            self._drop_on_read = None
            self.drop_link()
        if uuid == uuids.BATTERY_LEVEL:
            return encode_battery_level(round(self.battery_pct))
        if uuid == infinitime.STEP_COUNT and self.spec.steps_interval_s:
            return infinitime.encode_step_count(self.steps)
        if uuid == uuids.CURRENT_TIME and (self.spec.records_kept or self.spec.clock_settable):
            return encode_current_time(self._current_time())
        if uuid in self.strings:
            return self.strings[uuid].encode()
        if uuid == pmd.PMD_CONTROL_POINT and self._pmd:
            ppi_offered = ("ppi",) if self.spec.ppi_interval_s else ()
            return pmd_settings.encode_features((*self._pmd, *ppi_offered))
        return super().read(uuid)

    def write(self, uuid: str, data: bytes) -> None:
        """The PMD control point (start, stop; answered by an indication) and the RACP."""
        drop = self._drop_on_write
        if drop is not None and uuid == drop[0]:
            self._drop_on_write = None
            self.drop_link(drop[1])  # the write is never answered
            return
        if uuid == uuids.RECORD_ACCESS_CONTROL_POINT and self.spec.records_kept:
            self._record_access(data)
            return
        if uuid == gsp.COMMAND and self._gsp is not None:
            self._gsp.command(data)
            return
        if uuid == uuids.CURRENT_TIME and self.spec.clock_settable:
            with contextlib.suppress(DecodeError):  # a bad value leaves the clock as it was
                written = decode_current_time(data).epoch_s()
                if written is not None:
                    self.clock_offset_s = written - self.clock.now_s()
                    self.clock_sets += 1
            return
        if uuid != pmd.PMD_CONTROL_POINT or not self._pmd:
            super().write(uuid, data)
            return
        try:
            op, measurement, settings = pmd.parse_command(data)
        except DecodeError:
            return
        status, parameters = self._pmd_command(op, measurement, settings)
        if self.spec.pmd_answers:
            answer = pmd.encode_control_point_response(op, measurement, status, parameters)
            self.indicate(pmd.PMD_CONTROL_POINT, answer)

    def _pmd_command(
        self, op: int, measurement: str, settings: dict[int, int]
    ) -> tuple[int, bytes]:
        """A PMD command carried out: its status, and the parameters of the answer."""
        if measurement == "ppi" and self.spec.ppi_interval_s:  # no settings
            if op != pmd.OP_GET_SETTINGS:
                self.ppi_streaming = op == pmd.OP_START
            return _STATUS_SUCCESS, b""
        state = self._pmd.get(measurement)
        if state is None:
            return _STATUS_NOT_SUPPORTED, b""
        own = state.spec
        if op == pmd.OP_GET_SETTINGS:
            return _STATUS_SUCCESS, pmd_settings.encode_settings(own.offer())
        if op == pmd.OP_STOP:
            state.streaming = False
            return _STATUS_SUCCESS, b""
        refusal = _refusal(own, settings)
        if refusal is not None:
            return refusal, b""
        # A start on a stalled stream is what un-sticks it on real straps.
        state.streaming = state.measured = True
        state.started_s = self.clock.now_s()
        self.unstall(pmd.PMD_DATA)
        return _STATUS_SUCCESS, pmd_settings.encode_settings({"factor": (own.factor,)})

    def stop_measurement(self) -> None:
        """Fault: the device ends its PMD streams itself (charger, low battery) and says so."""
        streaming = tuple(m for m, state in self._pmd.items() if state.streaming)
        if not streaming:
            return
        for measurement in streaming:
            self._pmd[measurement].streaming = False
        self.indicate(pmd.PMD_CONTROL_POINT, pmd.encode_measurement_stopped(streaming))

    def on_link_closed(self) -> None:
        """A new link must start PMD again (as on a Polar device); a record transfer stops."""
        for state in self._pmd.values():
            state.streaming = False
        if self._gsp is not None:
            self._gsp.link_closed()
        self.ppi_streaming = False
        self._transfer = 0

    # --- stored records (RACP) ------------------------------------------------------------

    def _record_access(self, data: bytes) -> None:
        """One control-point write: answered by an indication, records first if asked for."""
        self.record_requests += 1
        if self._transfer and data[:1] != bytes([racp.OpCode.ABORT]):
            raise AttError(racp.ATT_PROCEDURE_ALREADY_IN_PROGRESS)
        try:
            request = racp.decode_request(data)
        except DecodeError:
            op = data[0] if data else 0
            known = op in set(racp.OpCode)
            self._answer(
                racp.OpCode(op) if known else racp.OpCode.REPORT_RECORDS,
                racp.ResponseCode.INVALID_OPERAND
                if known
                else racp.ResponseCode.OP_CODE_NOT_SUPPORTED,
            )
            return
        op = request.op_code
        if op is racp.OpCode.ABORT:
            self._transfer = 0
            self._answer(op, racp.ResponseCode.SUCCESS)
        elif op not in self.record_ops:
            self._answer(op, racp.ResponseCode.OP_CODE_NOT_SUPPORTED)
        elif request.operator is racp.Operator.NULL:
            self._answer(op, racp.ResponseCode.INVALID_OPERATOR)
        elif self._keeps_spot_checks and request.operator is not racp.Operator.ALL:
            self._answer(op, racp.ResponseCode.OPERATOR_NOT_SUPPORTED)  # as PLX devices do
        elif op is racp.OpCode.REPORT_NUMBER:
            count = len(self._matching(request))
            self.indicate(uuids.RECORD_ACCESS_CONTROL_POINT, racp.number_response(count).encode())
        elif not (matching := self._matching(request)):
            self._answer(op, racp.ResponseCode.NO_RECORDS_FOUND)
        else:
            self._transfers += 1
            self._transfer = self._transfers
            self._send_records(self._transfer, matching)

    def reset_records(self) -> None:
        """Fault: the memory is cleared (a battery change) and records are numbered from 0."""
        self.records.clear()
        self.spot_checks.clear()
        self._next_sequence = 0

    def drop_link_on_read(self, uuid: str) -> None:
        """Fault: the next read of ``uuid`` is answered, then the link drops (mid-setup)."""
        self._drop_on_read = uuid

    def drop_link_on_write(self, uuid: str, reason: int = SUPERVISION_TIMEOUT) -> None:
        """Fault: the next write of ``uuid`` (a PMD start, an RACP request) drops the link."""
        self._drop_on_write = (uuid, reason)

    def corrupt_record(self, sequence_number: int) -> None:
        """Fault: record ``sequence_number`` goes out cut short the next time it is sent.

        Cut as a decoder must refuse it; blood pressure records only.
        """
        self._corrupt_sequences.add(sequence_number)

    def busy_with_records(self) -> None:
        """Fault: a procedure another collector started is still running (until aborted)."""
        self._transfers += 1
        self._transfer = self._transfers

    def refuse_records(self) -> None:
        """Fault: firmware that lists the control point but supports none of its procedures."""
        self.record_ops = ()

    def _matching(self, request: racp.Request) -> list[tuple[str, bytes, int | None]]:
        """The kept records a request is about, as (characteristic, value, number) to send.

        Blood pressure records by sequence number (compared without wrapping); spot-checks
        all of them (the request was checked to be for all).
        """
        if self._keeps_spot_checks:
            return [
                (uuids.PLX_SPOT_CHECK, encode_plx_spot_check(m), None) for m in self.spot_checks
            ]
        return [
            (uuids.BLOOD_PRESSURE_RECORD, encode_blood_pressure_record(r), r.sequence_number)
            for r in self._matching_pressures(request)
        ]

    def _matching_pressures(self, request: racp.Request) -> list[BloodPressureRecord]:
        records = list(self.records)
        b = request.bounds
        match request.operator:
            case racp.Operator.FIRST:
                return records[:1]
            case racp.Operator.LAST:
                return records[-1:]
            case racp.Operator.LESS_OR_EQUAL:
                low, high = 0, b[0]
            case racp.Operator.GREATER_OR_EQUAL:
                low, high = b[0], 0xFFFF
            case racp.Operator.WITHIN_RANGE:
                low, high = b[0], b[1]
            case _:
                low, high = 0, 0xFFFF
        return [r for r in records if low <= r.sequence_number <= high]

    def _send_records(
        self, transfer: int, records: list[tuple[str, bytes, int | None]], next_index: int = 0
    ) -> None:
        """One record a step, as a cuff sends them; the link or an abort may end it."""
        if self._transfer != transfer:
            return
        if next_index == len(records):
            self._transfer = 0
            self._answer(racp.OpCode.REPORT_RECORDS, racp.ResponseCode.SUCCESS)
            return
        uuid, value, sequence = records[next_index]
        if sequence in self._corrupt_sequences:
            self._corrupt_sequences.discard(sequence)
            value = value[:4]
        self.indicate(uuid, value)
        self.after(
            self.spec.record_interval_s,
            lambda: self._send_records(transfer, records, next_index + 1),
        )

    def _answer(self, op: racp.OpCode, code: racp.ResponseCode) -> None:
        self.indicate(uuids.RECORD_ACCESS_CONTROL_POINT, racp.response(op, code).encode())
