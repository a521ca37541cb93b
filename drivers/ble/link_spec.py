"""What a link is given (the device's spec, its timings) and what it reports (its statistics)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from collections.abc import Mapping

    from drivers.ble.backfill import BackfillStatistics
    from drivers.ble.streams import StreamStatistics
    from drivers.polar import pmd


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    """What the link needs to know of one configured device.

    ``record_cursors``: for the streams the device keeps records of, the newest record the
    outbox holds (absent or ``None``: none yet); given, each connect fetches the records that
    follow (backfill) and the link moves the cursor itself. ``None``: records are not fetched.
    """

    device_id: str
    address: str
    pmd_streams: tuple[pmd.StreamSettings, ...] = ()
    record_cursors: Mapping[str, int | None] | None = None
    # where each stream's stored data ends (UTC): the first live data after it marks the time
    # between as a ``restart`` gap
    stored_ends: Mapping[str, float] | None = None
    # pair and bond after each connect (a bonded link re-encrypts instead): "just_works", or
    # "passkey" entering ``passkey`` (the six digits the device shows)
    pairing: Literal["none", "just_works", "passkey"] = "none"
    passkey: int | None = field(default=None, repr=False)
    # write the host's local time to the device's Current Time at each connect (a PineTime
    # has no other source of time: its companion app sets it so)
    set_clock: bool = False
    # Movesense resources to subscribe over GSP at each connect (``/Meas/ECG/250``, ...)
    movesense: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LinkTimings:
    """Every radio await is bounded; reconnects back off by the class of the failure.

    A watched stream (heard rate, PMD) silent for ``stream_silence_s`` while connected is
    subscribed again; silent for another ``stream_silence_s``, the link is dropped and rebuilt.
    The connect is bounded by bleak's ``connect_timeout_s`` and, above it, by a safety timeout
    of ``connect_safety_s`` more (a stalled stack may not honour bleak's).
    """

    scan_timeout_s: float = 10.0
    connect_timeout_s: float = 10.0
    connect_safety_s: float = 5.0
    gatt_timeout_s: float = 5.0
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0
    notification_queue_max: int = 1000
    stream_silence_s: float = 10.0
    watchdog_interval_s: float = 1.0


@dataclass(frozen=True, slots=True)
class LinkStatistics:
    """A device's connection state and counters, for status pages and metrics."""

    device_id: str
    connected: bool
    connects: int
    links_lost: int
    notifications: int
    decode_errors: int
    dropped_queue_full: int  # notifications and link events the full queue dropped
    readings: int
    samples: int
    battery_pct: int | None
    rssi_dbm: int | None
    resubscribes: int
    watchdog_reconnects: int
    device_info: dict[str, str]
    clock_offset_s: float | None
    clock_drift_ppm: float | None
    streams: tuple[StreamStatistics, ...]
    backfill: BackfillStatistics | None = None  # devices that keep records (RACP)
    failures: dict[str, int] | None = None  # connection failures and losses by class
    queue_high_water: int = 0  # the most notifications waiting to be decoded at once
    mtu: int | None = None  # the ATT MTU of the current or last link (None: not known)
    # streams the link could not carry, and why (e.g. an MTU too small for one frame)
    not_started: dict[str, str] | None = None
    address: str | None = None  # the configured Bluetooth address
    pmd_restarts: int = 0  # PMD streams the device stopped itself, started again
    # PMD streams as last started: their settings, factor, and what config asked that the
    # device did not offer ("asked")
    pmd: dict[str, dict[str, object]] | None = None
