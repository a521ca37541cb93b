"""Backfill through bleak's API: a device's records after a spell out of range, a transfer cut
by the link, a device busy with another procedure, one that keeps no records.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from drivers.ble.link import DeviceLink
from drivers.ble.link_spec import DeviceSpec, LinkTimings
from drivers.frames import Frame, GapMarker, VitalReading
from drivers.gatt import uuids
from drivers.sim.devices import SimDevice, preset
from drivers.sim.world import SimWorld
from tests.support import BACKENDS, backends, wait_for

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

FAST = LinkTimings(
    scan_timeout_s=2,
    connect_timeout_s=2,
    gatt_timeout_s=2,
    reconnect_min_s=0.01,
    reconnect_max_s=0.05,
)
CUFF = "5A:00:00:00:0C:01"


class Store:
    """What the outbox does for the link: keep each reading once (by its device timestamp),
    and the cursor of the newest record held.
    """

    def __init__(self) -> None:
        self.frames: list[Frame] = []
        self.readings: dict[str, VitalReading] = {}
        self.duplicates = 0
        self.cursors: dict[str, int] = {}

    async def emit(self, frame: Frame) -> None:
        self.frames.append(frame)
        if isinstance(frame, VitalReading) and frame.source_key is not None:
            if frame.record_number is not None:
                self.cursors[frame.stream] = frame.record_number
            if frame.source_key in self.readings:
                self.duplicates += 1
                return
            self.readings[frame.source_key] = frame

    @property
    def cursor(self) -> int | None:
        return self.cursors.get("blood_pressure")

    def gaps(self, stream: str = "blood_pressure") -> list[GapMarker]:
        return [f for f in self.frames if isinstance(f, GapMarker) and f.stream == stream]


def taken(device: SimDevice) -> list[str]:
    """The device timestamp of every reading the device took, in order."""
    return [str(r.measurement.to_json()["timestamp"]) for r in device.records]


@contextlib.asynccontextmanager
async def linked(
    device: SimDevice,
    *,
    speed: float,
    idle_s: float = 0.0,
    before_link: Callable[[], None] | None = None,
    kind: str = "sim",
) -> AsyncIterator[tuple[Store, DeviceLink]]:
    """The device in a world at ``speed``, and a link to it storing into a :class:`Store`.

    ``idle_s``: real seconds the device runs alone first; then ``before_link``. ``kind``: the
    backend (``sim``, or ``bumble``: the same device over bumble's stack).
    """
    async with (
        SimWorld([device], advert_interval_s=0.005, speed=speed) as world,
        backends(kind, world) as chosen,
    ):
        await asyncio.sleep(idle_s)
        if before_link is not None:
            before_link()
        store = Store()
        link = DeviceLink(
            DeviceSpec("dev", device.address, record_cursors={}),
            chosen,
            store.emit,
            FAST,
            now=world.clock.now_s,
            utc=world.clock.now_s,
        )
        task = asyncio.create_task(link.run(), name="link-under-test")
        try:
            yield store, link
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


@pytest.mark.parametrize("kind", BACKENDS)
async def test_ten_minutes_out_of_range_come_back_exactly_once_in_time_order(kind: str) -> None:
    """Test every reading a cuff took during a 10-minute spell held once, in order, gap filled:
    on our simulator, and on bumble's stack (RACP over real indications and notifications).
    """
    device = SimDevice(
        preset("cuff", CUFF, "C", blood_pressure_interval_s=10.0, clock_offset_s=-3600, seed=4)
    )
    async with linked(device, speed=100, kind=kind) as (store, link):
        await wait_for(lambda: len(store.readings) >= 3, timeout_s=10)
        device.go_out_of_range(600.0)
        spell_start = len(device.records)
        await wait_for(lambda: device.in_range, timeout_s=15)
        spell_end = len(device.records)
        await wait_for(
            lambda: (
                len(device.records) >= spell_end + 3 and len(store.readings) == len(device.records)
            ),
            timeout_s=15,
        )
    assert len(device.records) - spell_start >= 55  # the spell's readings, kept by the cuff
    assert list(store.readings) == taken(device)[: len(store.readings)]  # all, once, in order
    kept = list(store.readings.values())  # in the order they were stored
    assert [r.t0_s for r in kept] == sorted(r.t0_s for r in kept)
    backfilled = [r for r in store.readings.values() if r.backfilled]
    assert len(backfilled) >= 55
    # placed by the cuff's clock (an hour slow, read at connect): each within the second
    # its timestamp names
    for r in backfilled:
        assert r.source_key is not None
        device_s = datetime.fromisoformat(r.source_key).replace(tzinfo=UTC).timestamp()
        assert 0.0 <= r.t0_s - (device_s + 3600) < 1.1
    gaps = store.gaps()
    assert [g.filled for g in gaps] == [False, True]  # the gap, then the same gap filled
    assert gaps[0].seq == gaps[1].seq and gaps[0].t0_s == gaps[1].t0_s
    stats = link.statistics()
    assert stats.backfill is not None and stats.backfill.supported
    assert stats.backfill.records >= 55 and stats.backfill.failures == 0


async def test_a_short_drop_with_nothing_recorded_leaves_no_gap() -> None:
    """Test that a link drop between two readings, proven complete by the records, is no gap."""
    device = SimDevice(preset("cuff", CUFF, "C", blood_pressure_interval_s=30.0, seed=5))
    async with linked(device, speed=100) as (store, _link):
        await wait_for(lambda: len(store.readings) >= 2, timeout_s=10)
        device.drop_link()
        await wait_for(lambda: len(store.readings) >= 4, timeout_s=10)
    assert store.gaps() == []
    assert list(store.readings) == taken(device)[: len(store.readings)]


async def test_a_transfer_cut_by_the_link_resumes_on_the_next_connect() -> None:
    """Test a link lost mid-transfer: no half record, the rest fetched after reconnecting."""
    device = SimDevice(
        preset("cuff", CUFF, "C", blood_pressure_interval_s=5.0, record_interval_s=2.0, seed=6)
    )
    async with linked(device, speed=50) as (store, link):
        await wait_for(lambda: len(store.readings) >= 2, timeout_s=10)
        device.go_out_of_range(200.0)  # 40 readings kept meanwhile
        await wait_for(lambda: device.in_range, timeout_s=15)
        # the transfer runs (a record every 40 ms): cut it after a few records
        await wait_for(lambda: sum(r.backfilled for r in store.readings.values()) >= 5)
        device.drop_link()
        await wait_for(lambda: len(store.readings) >= len(device.records), timeout_s=20)
    # every reading once; the live ones the cut transfer held back were stored when it was cut
    # (never kept in memory across a lost link), so by time, not necessarily by arrival
    by_time = sorted(store.readings.values(), key=lambda r: r.t0_s)
    assert [r.source_key for r in by_time] == taken(device)[: len(store.readings)]
    assert len(store.readings) == len(device.records)
    stats = link.statistics().backfill
    assert stats is not None and stats.interrupted == 1 and stats.transfers >= 2


async def test_a_device_busy_with_another_procedure_is_told_to_abort_it() -> None:
    """Test ATT error 0xFE: an abort, then the request again."""
    device = SimDevice(preset("cuff", CUFF, "C", blood_pressure_interval_s=5.0, seed=7))
    async with linked(device, speed=50, idle_s=0.5, before_link=device.busy_with_records) as (
        store,
        link,
    ):
        await wait_for(lambda: len(store.readings) >= 5, timeout_s=10)
    assert list(store.readings) == taken(device)[: len(store.readings)]
    stats = link.statistics().backfill
    assert stats is not None and stats.aborts == 1 and stats.records >= 5


async def test_a_device_without_records_support_is_not_asked_again() -> None:
    """Test 'op code not supported': the live readings flow, the link asks once."""
    device = SimDevice(preset("cuff", CUFF, "C", blood_pressure_interval_s=5.0, seed=8))
    device.refuse_records()
    async with linked(device, speed=50) as (store, link):
        await wait_for(lambda: len(store.readings) >= 2, timeout_s=10)
        device.drop_link()
        await wait_for(lambda: link.statistics().connects >= 2, timeout_s=10)
        await wait_for(lambda: len(store.readings) >= 4, timeout_s=10)
    stats = link.statistics().backfill
    assert stats is not None and stats.supported is False
    assert stats.failures == 0 and stats.transfers == 0
    assert device.record_requests == 1  # asked on the first connect only
    assert all(not r.backfilled for r in store.readings.values())


async def test_a_device_that_numbers_its_records_from_zero_again_is_fetched_whole() -> None:
    """Test a cleared memory (a battery change): nothing follows the cursor, yet all is new."""
    device = SimDevice(preset("cuff", CUFF, "C", blood_pressure_interval_s=5.0, seed=9))
    async with linked(device, speed=50) as (store, _link):
        await wait_for(lambda: len(store.readings) >= 6, timeout_s=10)
        device.drop_link()  # the reconnect fetches the records: the cursor is set
        await wait_for(
            lambda: (store.cursor or 0) >= 5 and set(taken(device)) <= set(store.readings),
            timeout_s=10,
        )
        before = taken(device)  # all held; what the reset clears is lost to nobody
        device.go_out_of_range(22.0)
        device.reset_records()  # four readings, numbered 0-3, taken while away
        await wait_for(lambda: device.in_range, timeout_s=10)
        await wait_for(
            lambda: len(device.records) >= 6 and set(taken(device)) <= set(store.readings),
            timeout_s=10,
        )
    assert list(store.readings) == before + taken(device)[: len(store.readings) - len(before)]
    # the cleared memory does not reach back to the gap's start: it cannot say nothing is
    # missing there, so the gap stays open
    gaps = store.gaps()
    assert gaps and not any(g.filled for g in gaps)


async def test_an_oximeters_spot_checks_come_back_by_time() -> None:
    """Test records without sequence numbers: all fetched, those after the cursor kept."""
    oximeter = "5A:00:00:00:0D:01"
    device = SimDevice(preset("oximeter", oximeter, "O", spot_check_interval_s=10.0, seed=10))
    async with linked(device, speed=100) as (store, link):

        def all_held(more: int) -> bool:
            taken = [str(m.to_json()["timestamp"]) for m in device.spot_checks]
            return len(taken) >= more and set(taken) <= set(store.readings)

        await wait_for(lambda: all_held(3), timeout_s=10)
        device.go_out_of_range(600.0)
        spell_start = len(device.spot_checks)
        await wait_for(lambda: device.in_range, timeout_s=15)
        await wait_for(lambda: all_held(spell_start + 63), timeout_s=15)
        device.drop_link()  # once more: the records after the cursor only
        emitted = len(store.frames)
        await wait_for(lambda: link.statistics().connects >= 3, timeout_s=10)
        await wait_for(lambda: all_held(spell_start + 66), timeout_s=10)
    taken = [str(m.to_json()["timestamp"]) for m in device.spot_checks]
    # each once, none missing; not strictly in time order: a spot-check the device takes during
    # the transfer comes on the same characteristic between its records (1 run in ~10 at
    # speed 100 on a busy machine), and is kept where it came (its own time goes with it)
    assert sorted(store.readings) == taken[: len(store.readings)]
    assert sum(r.backfilled for r in store.readings.values()) >= 58
    gaps = store.gaps("spo2_spot")  # the spell's (and the drop's, if a reading fell in it)
    assert gaps and {g.seq for g in gaps if g.filled} == {g.seq for g in gaps}
    # after the second drop, only spot-checks newer than the cursor were handed on
    again = [f for f in store.frames[emitted:] if isinstance(f, VitalReading) and f.backfilled]
    assert all(f.source_key not in taken[:spell_start] for f in again)
    stats = link.statistics().backfill
    assert stats is not None and stats.transfers >= 3 and stats.failures == 0


async def test_a_malformed_record_is_counted_and_the_gap_stays_open() -> None:
    """Test a record cut short in the air: dropped and counted, the rest kept, no false fill."""
    device = SimDevice(preset("cuff", CUFF, "C", blood_pressure_interval_s=10.0, seed=11))
    async with linked(device, speed=100) as (store, link):
        await wait_for(lambda: len(store.readings) >= 3, timeout_s=10)
        device.drop_link()  # the reconnect's transfer sets the cursor
        await wait_for(lambda: store.cursor is not None, timeout_s=10)
        device.go_out_of_range(100.0)
        # the spell's first reading, which only a transfer can bring (a record taken before
        # the spell may have come live too: cutting it would leave nothing missing)
        device.corrupt_record(device.records[-1].sequence_number + 1)
        spell_end = len(device.records) + 9
        await wait_for(lambda: len(store.readings) >= spell_end + 2, timeout_s=15)
    missing = [stamp for stamp in taken(device) if stamp not in store.readings]
    assert len(missing) == 1  # the cut record, and only it
    kept = list(store.readings.values())
    assert [r.t0_s for r in kept] == sorted(r.t0_s for r in kept)
    pressure = next(s for s in link.statistics().streams if s.stream == "blood_pressure")
    assert pressure.decode_errors == 1
    gaps = store.gaps()
    assert gaps and not any(g.filled for g in gaps)  # a reading is missing: not filled


@pytest.mark.parametrize("kind", BACKENDS)
async def test_a_link_lost_while_subscribing_does_not_leave_the_transfer_waiting(
    kind: str,
) -> None:
    """Test a drop after the record subscription, before the transfer: the next link works.
    (Over bumble the GATT request pending at the drop is cancelled by the stack: that
    cancellation once ended the link's task for good.)
    """
    device = SimDevice(preset("cuff", CUFF, "C", blood_pressure_interval_s=5.0, seed=12))
    device.drop_link_on_read(uuids.BATTERY_LEVEL)  # read after the records are subscribed
    async with linked(device, speed=50, kind=kind) as (store, link):
        await wait_for(lambda: len(store.readings) >= 4, timeout_s=10)
    stats = link.statistics()
    assert stats.connects >= 2 and stats.backfill is not None and stats.backfill.transfers >= 1
    assert list(store.readings) == taken(device)[: len(store.readings)]
