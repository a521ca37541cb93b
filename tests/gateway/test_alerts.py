"""Field alerts and rates: stalled streams, growing backlogs, samples per second against nominal;
on a real daemon, the alert retained on MQTT while a strap is out of range.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import TYPE_CHECKING, Any

import aiomqtt

from drivers.ble.link_spec import LinkStatistics
from drivers.ble.streams import StreamStatistics
from gateway.alerts import FieldWatch
from gateway.config import AlertsConfig, Settings
from gateway.daemon import Daemon
from tests.support import daemon_config, wait_for

if TYPE_CHECKING:
    from pathlib import Path

    from aiohttp.test_utils import TestServer

    from tests.conftest import Broker

CONFIG = AlertsConfig(rate_window_s=10, stream_stall_s=30, backlog_growing_s=100)


def device(units: int, last_s: float | None, *, connected: bool = True) -> LinkStatistics:
    ecg = StreamStatistics("ecg", 1, units, None, 0, 0, last_s, 130.0)
    bp = StreamStatistics("blood_pressure", 1, 1, None, 0, 0, 0.0, None)
    return LinkStatistics(
        "strap", connected, 1, 0, 1, 0, 0, 0, units, None, None, 0, 0, {}, None, None, (ecg, bp)
    )


def test_rate_is_measured_over_the_window_against_nominal() -> None:
    """Test samples per second from the counters' recent history."""
    watch = FieldWatch(CONFIG)
    for t in range(21):
        watch.evaluate([device(130 * min(t, 14), float(min(t, 14)))], {}, float(t))
    ecg = next(r for r in watch.rates() if r.stream == "ecg")
    assert ecg.nominal_hz == 130.0
    assert ecg.rate_hz is not None and 0 < ecg.rate_hz < 130  # the last 5 s brought nothing
    assert ecg.data_age_s == 6.0
    watch2 = FieldWatch(CONFIG)
    for t in range(21):
        watch2.evaluate([device(130 * t, float(t))], {}, float(t))
    assert next(r for r in watch2.rates() if r.stream == "ecg").rate_hz == 130.0


def test_a_stream_stalls_and_recovers_and_spot_readings_never_stall() -> None:
    """Test raise after stream_stall_s of silence, clear on data; BP's silence is no alert."""
    watch = FieldWatch(CONFIG)
    watch.evaluate([device(100, 10.0)], {}, 39.0)
    assert watch.alerts() == ()
    watch.evaluate([device(100, 10.0, connected=False)], {}, 40.0)
    (alert,) = watch.alerts()
    assert (alert.kind, alert.subject, alert.since_s) == ("stream_stalled", "strap/ecg", 10.0)
    assert "30 s" in alert.detail and "disconnected" in alert.detail
    watch.evaluate([device(200, 41.0)], {}, 41.0)
    assert watch.alerts() == ()


def test_a_backlog_that_does_not_shrink_for_long_raises_an_alert() -> None:
    """Test growth without a shrink for backlog_growing_s; a shrink or an empty backlog resets."""
    watch = FieldWatch(CONFIG)
    for t, pending in [(0, 5), (50, 9), (99, 9)]:
        watch.evaluate([], {"health_upload": pending}, float(t))
    assert watch.alerts() == ()
    watch.evaluate([], {"health_upload": 12}, 100.0)
    (alert,) = watch.alerts()
    assert (alert.kind, alert.subject, alert.since_s) == ("backlog_growing", "health_upload", 0.0)
    watch.evaluate([], {"health_upload": 11}, 101.0)  # uploads resumed
    assert watch.alerts() == ()
    watch.evaluate([], {"health_upload": 0}, 300.0)
    watch.evaluate([], {"health_upload": 3}, 301.0)
    watch.evaluate([], {"health_upload": 300}, 400.0)
    assert watch.alerts() == ()  # growing since 301 only


def test_frames_waiting_or_notifications_dropped_are_falling_behind() -> None:
    """Test a store that lags (frames waiting past the bound) and links that drop
    notifications: one ``falling_behind`` alert from the first check that saw either, cleared
    at the first check that sees neither."""
    watch = FieldWatch(CONFIG)
    watch.evaluate([dropping(0)], {}, 0.0, frames_waiting=CONFIG.frames_waiting_max - 1)
    assert watch.alerts() == ()
    watch.evaluate([dropping(0)], {}, 5.0, frames_waiting=CONFIG.frames_waiting_max)
    watch.evaluate([dropping(40)], {}, 10.0, frames_waiting=3)
    (alert,) = watch.alerts()
    assert (alert.kind, alert.subject, alert.since_s) == ("falling_behind", "gateway", 5.0)
    assert alert.detail.endswith("; 40 notifications dropped since the last check")
    watch.evaluate([dropping(40)], {}, 15.0, frames_waiting=3)
    assert watch.alerts() == ()


def dropping(dropped: int) -> LinkStatistics:
    """A strap whose full notification queue dropped ``dropped`` so far."""
    return dataclasses.replace(device(100, 10.0), dropped_queue_full=dropped)


async def test_a_stalled_strap_is_alerted_retained_on_mqtt_and_cleared(
    tmp_path: Path, broker: Broker, emulator: TestServer, topic_prefix: str
) -> None:
    """Test the daemon: out of range -> stream_stalled on <prefix>/<gw>/alerts, then cleared."""
    raw = daemon_config(
        tmp_path,
        str(emulator.make_url("")),
        [{"model": "strap", "address": "5A:00:00:00:00:01", "heart_rate_interval_ms": 100}],
        [{"id": "s1", "address": "5A:00:00:00:00:01"}],
        mqtt={
            "enabled": True,
            "host": broker.host,
            "port": broker.port,
            "topic_prefix": topic_prefix,
            "state_interval_s": 0.1,
        },
        alerts={"check_interval_s": 0.1, "stream_stall_s": 1.0, "rate_window_s": 1.0},
    )
    raw["ble"] |= {"scan_timeout_s": 0.3, "reconnect_max_s": 0.2}
    daemon = Daemon(Settings.model_validate(raw))
    world = daemon.sim_world
    assert world is not None
    seen: list[list[dict[str, Any]]] = []

    async def subscribe(ready: asyncio.Event) -> None:
        async with aiomqtt.Client(broker.host, broker.port) as client:
            await client.subscribe(f"{topic_prefix}/gw/alerts", qos=1)
            ready.set()
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                seen.append(json.loads(message.payload))

    ready = asyncio.Event()
    subscriber = asyncio.create_task(subscribe(ready))
    await ready.wait()
    runner = asyncio.create_task(daemon.run())
    try:
        await daemon.wait_ready()

        async def heart_rate_flows() -> bool:
            rates = (await daemon.statistics()).rates
            return any(r.stream == "heart_rate" and (r.rate_hz or 0) > 5 for r in rates)

        await wait_for(heart_rate_flows)
        world.peripherals["5A:00:00:00:00:01"].go_out_of_range(3.0)
        await wait_for(lambda: any(a for a in seen), timeout_s=10)
        stalled = (await daemon.statistics()).alerts
        await wait_for(lambda: bool(seen) and seen[-1] == [], timeout_s=15)
    finally:
        daemon.stop()
        await runner
        subscriber.cancel()
        await asyncio.gather(subscriber, return_exceptions=True)
    first = next(a for a in seen if a)
    assert first[0]["kind"] == "stream_stalled"
    assert first[0]["subject"] == "s1/heart_rate"
    assert [a.subject for a in stalled] == ["s1/heart_rate"]
    # the retained copy a dashboard gets on subscribing: the state now (no alert)
    async with aiomqtt.Client(broker.host, broker.port) as client:
        await client.subscribe(f"{topic_prefix}/gw/alerts", qos=1)
        async with asyncio.timeout(5):
            message = await anext(aiter(client.messages))
    assert message.retain and json.loads(message.payload) == []
