"""`wgw sync [--full]` as a process against a running daemon's status API."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import yaml

from gateway.config import Settings
from gateway.daemon import Daemon
from gateway.emulator.app import STATE_KEY
from tests.support import daemon_config, free_port, run_wgw, wait_for

if TYPE_CHECKING:
    from pathlib import Path

    from aiohttp.test_utils import TestServer

    from drivers.sim.devices import SimDevice


def config_for(tmp_path: Path, emulator_url: str, port: int) -> dict[str, Any]:
    return daemon_config(
        tmp_path,
        emulator_url,
        [{"address": "5A:00:00:00:00:01", "heart_rate_interval_ms": 20}],
        [{"id": "watch-01", "address": "5A:00:00:00:00:01"}],
        cloud={"tcm": {"plan": "free"}},
        sync={
            "mode": "batch",
            "batch_interval_s": 86_400,
            "min_request_interval_s": 0,
            "record_interval_s": 0,
        },
        http={"enabled": True, "port": port},
    )


async def test_sync_and_full_resend_from_the_command_line(
    tmp_path: Path, emulator: TestServer
) -> None:
    """Test a batch-mode daemon that uploads nothing until `wgw sync`, then `--full`.

    The plan is the free one: a sync a person asked for is not spread over the month.
    """
    raw = config_for(tmp_path, str(emulator.make_url("")), free_port())
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(raw))
    settings = Settings.model_validate(raw)
    state = emulator.app[STATE_KEY]
    daemon = Daemon(settings)
    assert daemon.sim_world is not None
    watch: SimDevice = daemon.sim_world.peripherals["5A:00:00:00:00:01"]  # type: ignore[assignment]
    runner = asyncio.create_task(daemon.run())
    try:
        await daemon.wait_ready()
        await wait_for(lambda: watch.counters["heart_rate"].sent >= 30)
        watch.stop()
        sent = len(watch.counters["heart_rate"].values_sent)

        async def stored() -> bool:
            return (await daemon.statistics()).stored_by_device["watch-01"] >= sent

        await wait_for(stored)
        await asyncio.sleep(0.1)  # the last commit
        assert state.uploads == 0  # batch mode, and the day is not over

        code, out, err = await run_wgw("sync", "--config", str(config), "--timeout", "5")
        assert code == 0, (out, err)
        assert f"incremental batch: {sent} readings in {sent} records" in out
        assert [r["heart_rate"] for r in state.records["watch-01"]] == (
            watch.counters["heart_rate"].values_sent
        )

        code, out, err = await run_wgw("sync", "--full", "--config", str(config))
        assert code == 0, err
        assert f"full resend: {sent} readings in {sent} records" in out
        assert "readings" in err  # the progress bar
    finally:
        daemon.stop()
        await runner
    assert dict(state.records_by_type) == {"batch/incremental": sent, "batch/full": sent}
    assert state.duplicates["watch-01"] == sent
    assert len(state.records["watch-01"]) == sent


async def test_sync_without_a_daemon_says_so(tmp_path: Path) -> None:
    """Test exit 1 and one clear line when nothing listens on the status port."""
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(config_for(tmp_path, "http://127.0.0.1:9", free_port())))
    code, out, err = await run_wgw("sync", "--config", str(config))
    assert code == 1
    assert out == ""
    assert "no daemon answers" in err
    assert "Traceback" not in err
