"""The simulated watch's stored blood pressure records, fetched over RACP through bleak's API:
what it measured out of range comes back, a transfer cut by the link resumes, a busy control
point refuses a second procedure.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest
from bleak import BleakClient
from bleak.exc import BleakError

from drivers.ble.backends import simulated
from drivers.gatt import racp, uuids
from drivers.gatt.bp_record import BloodPressureRecord, decode_blood_pressure_record
from drivers.sim.devices import SimDevice, preset
from drivers.sim.world import SimWorld
from tests.support import wait_for

if TYPE_CHECKING:
    from bleak.backends.characteristic import BleakGATTCharacteristic

ADDRESS = "5A:00:00:00:00:07"


def cuff_watch(**overrides: object) -> SimDevice:
    """A watch taking a blood pressure reading every 0.1 simulated seconds, nothing else."""
    only_blood_pressure: dict[str, object] = {
        "heart_rate_interval_s": None,
        "spo2_interval_s": None,
        "temperature_interval_s": None,
        "blood_pressure_interval_s": 0.1,
        "pmd": None,
    }
    return SimDevice(preset("watch", ADDRESS, "SimWatch-R", **{**only_blood_pressure, **overrides}))


class Collector:
    """The RACP side of a collector, on a connected BleakClient."""

    def __init__(self, client: BleakClient) -> None:
        self.client = client
        self.records: list[BloodPressureRecord] = []
        self.answers: asyncio.Queue[racp.Answer] = asyncio.Queue()

    async def start(self) -> None:
        def on_record(_c: BleakGATTCharacteristic, data: bytearray) -> None:
            self.records.append(decode_blood_pressure_record(data))

        def on_answer(_c: BleakGATTCharacteristic, data: bytearray) -> None:
            self.answers.put_nowait(racp.decode_answer(data))

        await self.client.start_notify(uuids.BLOOD_PRESSURE_RECORD, on_record)
        await self.client.start_notify(uuids.RECORD_ACCESS_CONTROL_POINT, on_answer)

    async def ask(self, request: racp.Request) -> racp.Answer:
        await self.client.write_gatt_char(
            uuids.RECORD_ACCESS_CONTROL_POINT, request.encode(), response=True
        )
        return await asyncio.wait_for(self.answers.get(), timeout=5)


async def test_readings_taken_out_of_range_come_back_whole_and_in_order() -> None:
    """Test the field case: the wearer walks away, readings are lost live, and on the next
    connect the count and the records from the first missing sequence number bring them back.
    """
    device = cuff_watch()
    async with SimWorld([device], advert_interval_s=0.01) as world:
        backends = simulated(world)
        live: list[int] = []
        async with BleakClient(ADDRESS, backend=backends.client) as client:
            await client.start_notify(
                uuids.BLOOD_PRESSURE_MEASUREMENT, lambda _c, _d: live.append(len(live))
            )
            await wait_for(lambda: len(live) >= 3)
        await asyncio.sleep(0.5)  # ~5 readings with nobody listening
        counters = device.counters["blood_pressure"]
        assert counters.lost_link_down >= 3
        async with BleakClient(ADDRESS, backend=backends.client) as client:
            collector = Collector(client)
            await collector.start()
            first_missing = len(live)
            count = await collector.ask(racp.count_from(first_missing))
            assert count.op_code is racp.OpCode.NUMBER_RESPONSE
            assert count.count is not None and count.count >= counters.lost_link_down
            done = await collector.ask(racp.records_from(first_missing))
            kept = [r for r in device.records if r.sequence_number >= first_missing]
    assert done == racp.response(racp.OpCode.REPORT_RECORDS, racp.ResponseCode.SUCCESS)
    got = collector.records
    assert [r.sequence_number for r in got] == list(range(first_missing, first_missing + len(got)))
    assert got == kept[: len(got)]  # what the device measured, field for field
    assert len(got) >= count.count


async def test_a_transfer_cut_by_the_link_resumes_and_a_busy_point_says_so() -> None:
    """Test a link lost mid-transfer (no answer; the next connect asks from the last record
    received + 1) and a second request while records are still going out (ATT error 0xFE).
    """
    device = cuff_watch(blood_pressure_interval_s=0.02, record_interval_s=0.05)
    async with SimWorld([device], advert_interval_s=0.01) as world:
        backends = simulated(world)
        await asyncio.sleep(0.5)  # ~25 records kept, nobody connected
        device.stop()  # the cuff stops measuring: the records are what they are
        async with BleakClient(ADDRESS, backend=backends.client) as client:
            collector = Collector(client)
            await collector.start()
            await client.write_gatt_char(
                uuids.RECORD_ACCESS_CONTROL_POINT, racp.records_from(0).encode(), response=True
            )
            await wait_for(lambda: len(collector.records) >= 3)
            with pytest.raises(BleakError, match="0xfe"):
                await client.write_gatt_char(
                    uuids.RECORD_ACCESS_CONTROL_POINT, racp.count_from(0).encode(), response=True
                )
            device.drop_link()
        first = list(collector.records)
        assert 3 <= len(first) < len(device.records)
        async with BleakClient(ADDRESS, backend=backends.client) as client:
            collector = Collector(client)
            await collector.start()
            done = await collector.ask(racp.records_from(first[-1].sequence_number + 1))
            assert done.code is racp.ResponseCode.SUCCESS
            again = await collector.ask(racp.records_from(len(device.records)))
    assert first + collector.records == list(device.records)  # each exactly once
    assert again.code is racp.ResponseCode.NO_RECORDS_FOUND
