"""A device that wants an encrypted link, over bumble's stack (SMP, LE Secure Connections): an
unpaired gateway says once what to do; "just works" and passkey entry pair once, the bond kept
in a file re-encrypts the link on every reconnect and after a restart; a wrong passkey is told.
"""

from __future__ import annotations

import asyncio
import logging
import stat
from typing import TYPE_CHECKING

from drivers.ble.backends import bumble
from drivers.ble.link import DeviceLink
from drivers.ble.link_spec import DeviceSpec, LinkTimings
from drivers.bumble.serve import served
from drivers.frames import Frame, VitalReading
from drivers.sim.devices import SimDevice, preset
from drivers.sim.world import SimWorld
from tests.support import wait_for

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

FAST = LinkTimings(scan_timeout_s=2, connect_timeout_s=3, gatt_timeout_s=2, reconnect_min_s=0.01)
CUFF = "5A:00:00:00:0E:01"


def cuff(security: str) -> SimDevice:
    """A cuff measuring every 5 simulated seconds, whose health services need ``security``."""
    return SimDevice(preset("cuff", CUFF, "Cuff", blood_pressure_interval_s=5.0, security=security))


class Run:
    """One gateway lifetime: a radio with its bond file, a link, what it emitted."""

    def __init__(self) -> None:
        self.readings: list[VitalReading] = []

    async def emit(self, frame: Frame) -> None:
        if isinstance(frame, VitalReading) and frame.stream == "blood_pressure":
            self.readings.append(frame)


async def gateway_lifetime(
    world: SimWorld, spec: DeviceSpec, bonds: Path, until: int, device: SimDevice
) -> DeviceLink:
    """Run a gateway until it stored ``until`` readings, with one link drop half way."""
    run = Run()
    async with served(world, bonds) as (radio, _served):
        link = DeviceLink(spec, bumble(radio), run.emit, FAST, now=world.clock.now_s)
        task = asyncio.create_task(link.run())
        await wait_for(lambda: len(run.readings) >= until // 2, timeout_s=15)
        device.drop_link()
        await wait_for(lambda: len(run.readings) >= until, timeout_s=15)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return link


def gateway_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The error lines the gateway wrote (not bumble's: when a test cancels the link, a Command
    Complete can come for a command whose wait was cancelled, and bumble's host logs an
    InvalidStateError through asyncio, once in CI).
    """
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.ERROR and r.name.startswith(("drivers.", "gateway."))
    ]


async def test_an_unpaired_gateway_says_once_what_an_encrypted_device_needs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Test a cuff whose services need encryption, and no pairing configured: nothing is read,
    failures are classed 'encryption', and one error line names the device and the setting.
    """
    device = cuff("just_works")
    readings = Run()
    with caplog.at_level(logging.INFO, logger="drivers.ble.link"):
        async with SimWorld([device], speed=10) as world, served(world) as (radio, _served):
            spec = DeviceSpec("cuff", CUFF, record_cursors={})
            link = DeviceLink(spec, bumble(radio), readings.emit, FAST, now=world.clock.now_s)
            task = asyncio.create_task(link.run())
            await wait_for(
                lambda: (link.statistics().failures or {}).get("encryption", 0) >= 2, timeout_s=20
            )
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    assert readings.readings == [] and device.pairings == 0
    errors = gateway_errors(caplog)
    assert len(errors) == 1
    assert "cuff" in errors[0] and CUFF in errors[0] and "pairing: just_works" in errors[0]


async def test_just_works_pairs_once_and_the_bond_reencrypts_after_drops_and_a_restart(
    tmp_path: Path,
) -> None:
    """Test "just works" pairing: one pairing in two gateway lifetimes with a link drop each;
    every other connection re-encrypted with the bond kept in the state directory (0600).
    """
    device = cuff("just_works")
    bonds = tmp_path / "state" / "bonds.json"
    spec = DeviceSpec("cuff", CUFF, pairing="just_works")
    async with SimWorld([device], speed=10) as world:
        first = await gateway_lifetime(world, spec, bonds, 4, device)
        second = await gateway_lifetime(world, spec, bonds, 4, device)
    assert first.statistics().connects == 2 and second.statistics().connects == 2
    assert device.pairings == 1  # the other three connections re-encrypted
    assert stat.S_IMODE(bonds.stat().st_mode) == 0o600 and CUFF in bonds.read_text()


async def test_passkey_entry_pairs_with_the_right_passkey_and_says_so_with_a_wrong_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Test a cuff showing 246810: the configured passkey pairs (authenticated link, data
    flows); a gateway with a wrong passkey is refused, and says to check the passkey.
    """
    device = cuff("passkey")
    device.passkey = 246810
    async with SimWorld([device], speed=10) as world:
        wrong = DeviceSpec("cuff", CUFF, pairing="passkey", passkey=135790)
        with caplog.at_level(logging.INFO, logger="drivers.ble.link"):
            async with served(world, tmp_path / "wrong.json") as (radio, _served):
                run = Run()
                link = DeviceLink(wrong, bumble(radio), run.emit, FAST, now=world.clock.now_s)
                task = asyncio.create_task(link.run())
                await wait_for(
                    lambda: (link.statistics().failures or {}).get("encryption", 0) >= 1,
                    timeout_s=20,
                )
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        assert run.readings == [] and device.pairings == 0
        errors = gateway_errors(caplog)
        assert len(errors) == 1 and "check the passkey" in errors[0]
        assert "135790" not in caplog.text  # a secret, never logged
        right = DeviceSpec("cuff", CUFF, pairing="passkey", passkey=246810)
        await gateway_lifetime(world, right, tmp_path / "right.json", 2, device)
    assert device.pairings == 1


async def test_an_unreadable_bond_file_is_set_aside_and_the_gateway_pairs_afresh(
    tmp_path: Path,
) -> None:
    """Test a bond file that does not parse: set aside (named in the log), pairing again."""
    device = cuff("just_works")
    bonds = tmp_path / "bonds.json"
    bonds.write_text("{ not json")
    spec = DeviceSpec("cuff", CUFF, pairing="just_works")
    async with SimWorld([device], speed=10) as world:
        await gateway_lifetime(world, spec, bonds, 2, device)
    assert (tmp_path / "bonds.json.unreadable").read_text() == "{ not json"
    assert device.pairings == 1 and CUFF in bonds.read_text()
