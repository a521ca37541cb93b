"""The MQTT live lane under a burst: many publications in flight, every one delivered, quietly."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import stat
from pathlib import Path
from typing import TYPE_CHECKING

import aiomqtt

from buffers.outbox import Outbox
from drivers.frames import VitalReading
from gateway.config import MqttConfig
from gateway.readings import Reading
from gateway.sinks import mqtt
from tests.support import wait_for

if TYPE_CHECKING:
    import pytest

    from tests.conftest import Broker


async def test_a_burst_of_live_readings_arrives_whole_without_flooding_the_log(
    tmp_path: Path, broker: Broker, topic_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Test 300 readings offered at once (a link's queue emptying after a stall): all reach a
    subscriber, and aiomqtt's per-publication warning about calls awaiting the broker, which
    the lanes' 32 in flight would trigger hundreds of times, is not written.
    """
    caplog.set_level(logging.WARNING)
    config = MqttConfig(host=broker.host, port=broker.port, topic_prefix=topic_prefix)
    got: list[int] = []
    subscribed = asyncio.Event()

    async def subscriber() -> None:
        async with aiomqtt.Client(broker.host, broker.port) as client:
            await client.subscribe(f"{topic_prefix}/gw/+/vitals", qos=1)
            subscribed.set()
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                got.append(json.loads(message.payload)["values"]["heart_rate_bpm"])

    async with Outbox(tmp_path / "o.sqlite", {mqtt.SINK: mqtt.wants}) as outbox:
        sink = mqtt.MqttSink(outbox, config, "gw")
        async with asyncio.TaskGroup() as tg:
            listening = tg.create_task(subscriber())
            running = tg.create_task(sink.run())
            await subscribed.wait()

            def reading(i: int) -> Reading:
                return Reading(
                    VitalReading("w1", "heart_rate", i, 1.8e9 + i, {"heart_rate_bpm": i})
                )

            def lanes_running() -> bool:  # what a lane finds queued when it starts is stale
                sink.offer_live(reading(-1))
                return sink.statistics().live_published > 0

            await wait_for(lanes_running, interval_s=0.1)
            for i in range(300):
                sink.offer_live(reading(i))
            await wait_for(lambda: len([g for g in got if g >= 0]) >= 300)
            for task in (listening, running):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
    assert sorted(g for g in got if g >= 0) == list(range(300))
    assert sink.statistics().live_dropped == 0
    assert not [r for r in caplog.records if "pending publish calls" in r.getMessage()]


def _sockets_to(port: int) -> list[socket.socket]:
    """This process's TCP sockets connected to ``port`` on the loopback (dup'd, to close)."""
    found = []
    for entry in Path("/proc/self/fd").iterdir():
        with contextlib.suppress(OSError):
            fd = int(entry.name)
            if not stat.S_ISSOCK(os.fstat(fd).st_mode):
                continue
            sock = socket.socket(fileno=os.dup(fd))
            try:  # a listening socket has no peer: getpeername raises
                if sock.type == socket.SOCK_STREAM and sock.getpeername()[1:2] == (port,):
                    found.append(sock)
                    continue
            except OSError:
                pass
            sock.close()
    return found


async def test_a_small_publication_is_not_held_back_for_the_brokers_ack(
    tmp_path: Path, broker: Broker, topic_prefix: str
) -> None:
    """Test the connection to the broker has Nagle's algorithm off: with it on (paho's
    default), a reading published while the previous one was unacknowledged waited for the
    broker's delayed ACK, 27-42 ms, whenever devices were out of step (the field day's p99).
    """
    config = MqttConfig(host=broker.host, port=broker.port, topic_prefix=topic_prefix)
    async with Outbox(tmp_path / "o.sqlite", {mqtt.SINK: mqtt.wants}) as outbox:
        sink = mqtt.MqttSink(outbox, config, "gw")
        async with asyncio.TaskGroup() as tg:
            running = tg.create_task(sink.run())
            await wait_for(lambda: sink.statistics().connected)
            sockets = _sockets_to(broker.port)
            try:
                assert len({sock.getsockname() for sock in sockets}) == 1  # the sink's only
                assert all(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) for s in sockets)
            finally:
                for sock in sockets:
                    sock.close()
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running
