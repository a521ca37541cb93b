"""The local API's operational routes against a running daemon: readiness, metrics, devices,
queue; and readiness refused before the daemon is up.
"""

from __future__ import annotations

import asyncio
import json
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any

import aiohttp
import yaml
from prometheus_client.parser import text_string_to_metric_families

from gateway.config import Settings
from gateway.daemon import Daemon
from gateway.http.api import serve_status
from tests.support import daemon_config, free_port, run_wgw, wait_for

if TYPE_CHECKING:
    from pathlib import Path

    from aiohttp.test_utils import TestServer


async def get(url: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        if response.content_type == "application/json":
            return response.status, await response.json()
        return response.status, await response.text()


async def test_readiness_metrics_devices_and_queue(tmp_path: Path, emulator: TestServer) -> None:
    """Test each route on a daemon with one streaming armband."""
    ppg = {"measurement": "ppg", "sample_rate_hz": 135, "resolution_bits": 22, "channels": 4}
    raw = daemon_config(
        tmp_path,
        str(emulator.make_url("")),
        [{"model": "armband", "address": "5A:00:00:00:00:01", "malformed_rate": 0.05}],
        [{"id": "arm", "address": "5A:00:00:00:00:01", "pmd": [ppg]}],
        http={"enabled": True, "port": 0},
    )
    daemon = Daemon(Settings.model_validate(raw))
    runner = asyncio.create_task(daemon.run())
    try:
        await daemon.wait_ready()
        base = daemon.status_url
        assert base is not None

        async def streaming() -> bool:
            device = (await daemon.statistics()).devices[0]
            return device.samples > 500 and device.decode_errors > 0

        await wait_for(streaming)
        ready_status, ready = await get(f"{base}/readyz")
        metrics_status, text = await get(f"{base}/metrics")
        devices_status, devices = await get(f"{base}/api/devices")
        queue_status, queue = await get(f"{base}/api/queue")
    finally:
        daemon.stop()
        await runner
    assert ready_status == 200
    assert ready["ready"] is True
    assert ready["devices"] == {"arm": True}
    assert metrics_status == 200
    samples = {
        s.name: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.labels.get("device") == "arm" or s.labels.get("sink") == "health_upload"
    }
    assert samples["wgw_device_samples_total"] > 500
    assert samples["wgw_device_connected"] == 1.0
    assert "wgw_sink_backlog_rows" in samples
    assert samples["wgw_stream_gaps_total"] == 0  # per device and stream, as are fills
    assert "wgw_stream_backfilled_readings_total" in samples
    drops = {
        (s.labels["where"], s.labels["reason"]): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "wgw_dropped_total"
    }
    assert drops[("link_decode", "malformed")] > 0  # the malformed packets, under one name
    # every place that drops, even at 0 (no broker here: no MQTT live lanes)
    assert {where for where, _ in drops} == {"link_queue", "link_decode", "live_page", "outbox"}
    gateway = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}
    assert 0 <= gateway["wgw_loop_lag_seconds"] <= gateway["wgw_loop_lag_max_seconds"] < 1
    assert gateway["wgw_loop_lag_observed_seconds_count"] >= 1  # a histogram since start
    assert gateway["wgw_asyncio_tasks"] > 3  # the pipeline's, the sinks', a link's
    limit = gateway["wgw_upload_quota_limit"]
    assert 0 <= gateway["wgw_upload_quota_remaining"] <= limit
    assert gateway["wgw_upload_quota_reset_timestamp_seconds"] > 1.7e9
    assert devices_status == 200
    assert devices[0]["device_id"] == "arm"
    assert queue_status == 200
    assert "health_upload" in queue["outbox"]["backlog"]


async def test_a_stalled_adapter_is_recovered_and_counted(
    tmp_path: Path, emulator: TestServer
) -> None:
    """Test the daemon's adapter watch: a wedged adapter is reset, the device streams again."""
    raw = daemon_config(
        tmp_path,
        str(emulator.make_url("")),
        [{"model": "strap", "address": "5A:00:00:00:00:01", "heart_rate_interval_ms": 100}],
        [{"id": "s1", "address": "5A:00:00:00:00:01"}],
        http={"enabled": True, "port": 0},
    )
    raw["ble"] |= {
        "scan_timeout_s": 0.3,
        "reconnect_max_s": 0.1,
        "adapter_silence_s": 0.5,
        "adapter_recovery_interval_s": 1,
    }
    daemon = Daemon(Settings.model_validate(raw))
    world = daemon.sim_world
    assert world is not None
    runner = asyncio.create_task(daemon.run())
    try:
        await daemon.wait_ready()

        async def connected(times: int) -> bool:
            device = (await daemon.statistics()).devices[0]
            return device.connected and device.connects == times

        await wait_for(lambda: connected(1))
        world.stall_adapter()
        await wait_for(lambda: world.adapter_resets == 1, timeout_s=15)
        await wait_for(lambda: connected(2))
        _, text = await get(f"{daemon.status_url}/metrics")
    finally:
        daemon.stop()
        await runner
    samples = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}
    assert samples["wgw_adapter_stalls_total"] == 1
    assert samples["wgw_adapter_recoveries_total"] == 1
    assert samples["wgw_adapter_recovery_failures_total"] == 0


async def test_a_token_guards_every_route_but_liveness() -> None:
    """Test 401 without the token, the header and the page's cookie, and open /healthz."""
    token = "t0ken-for-the-clinic"
    async with AsyncExitStack() as stack:
        url = await serve_status(stack, NotYet(), "127.0.0.1", 0, token=token)  # type: ignore[arg-type]
        async with aiohttp.ClientSession() as anonymous:
            async with anonymous.get(f"{url}/healthz") as r:
                assert r.status == 200
            for path in ("/readyz", "/metrics", "/api/status", "/"):
                async with anonymous.get(f"{url}{path}") as r:
                    assert r.status == 401, path
                    assert r.headers["WWW-Authenticate"].startswith("Bearer")
            wrong = {"Authorization": "Bearer t0ken-for-the-clinix"}
            async with anonymous.get(f"{url}/readyz", headers=wrong) as r:
                assert r.status == 401
        bearer = {"Authorization": f"Bearer {token}"}
        async with (
            aiohttp.ClientSession(headers=bearer) as client,
            client.get(f"{url}/readyz") as r,
        ):
            assert r.status == 503  # through the guard: the daemon is not ready
        # aiohttp keeps no cookie of a bare IP address unless told to; browsers do
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
            async with browser.get(f"{url}/?token={token}", allow_redirects=False) as r:
                assert r.status == 302
            async with browser.get(f"{url}/readyz") as r:  # the cookie it was given
                assert r.status == 503


class NotYet:
    """A daemon that has not started: only readiness is asked."""

    def is_ready(self) -> bool:
        return False


async def test_readiness_is_refused_until_the_daemon_is_up() -> None:
    """Test 503 from /readyz while the daemon is not ready."""
    async with AsyncExitStack() as stack:
        url = await serve_status(stack, NotYet(), "127.0.0.1", 0)  # type: ignore[arg-type]
        status, body = await get(f"{url}/readyz")
    assert status == 503
    assert body == {"ready": False}


async def test_wgw_status_prints_the_tables(tmp_path: Path, emulator: TestServer) -> None:
    """Test `wgw status` as a process against a running daemon, and without one."""
    raw = daemon_config(
        tmp_path,
        str(emulator.make_url("")),
        [{"model": "strap", "address": "5A:00:00:00:00:01", "heart_rate_interval_ms": 100}],
        [{"id": "s1", "address": "5A:00:00:00:00:01"}],
        http={"enabled": True, "port": free_port(), "token": "field-token-1"},
    )
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(raw))
    daemon = Daemon(Settings.model_validate(raw))
    runner = asyncio.create_task(daemon.run())
    try:
        await daemon.wait_ready()

        async def reading() -> bool:
            return (await daemon.statistics()).devices[0].readings > 3

        await wait_for(reading)
        code, out, err = await run_wgw("status", "--config", str(config))
        json_code, json_out, _ = await run_wgw("status", "--json", "--config", str(config))
        raw["http"].pop("token")
        tokenless = tmp_path / "tokenless.yaml"
        tokenless.write_text(yaml.safe_dump(raw))
        refused_code, _, refused_err = await run_wgw("status", "--config", str(tokenless))
    finally:
        daemon.stop()
        await runner
    assert code == 0, err
    assert "s1" in out
    assert "heart_rate" in out
    assert "health_upload" in out
    assert "clock:" in out
    assert json_code == 0
    assert json.loads(json_out)["devices"][0]["device_id"] == "s1"
    assert refused_code == 1
    assert "answered 401" in refused_err
    code, out, err = await run_wgw("status", "--config", str(config))  # the daemon is gone
    assert code == 1
    assert "no daemon answers" in err
