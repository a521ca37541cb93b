"""The pairing agent over a real D-Bus (a private dbus-daemon): BlueZ's calls, as BlueZ makes
them, answered with the passkey configured for the device, and refused for any other.

(Registering it with bluetoothd, and pairing through it, is the BlueZ check's: ``make
bluez-check``.)"""

from __future__ import annotations

import asyncio
import shutil
from typing import TYPE_CHECKING, Any

import pytest
from dbus_fast import Message, MessageType
from dbus_fast.aio import MessageBus

from drivers.ble.bluez_agent import AGENT_PATH, PasskeyAgent, address_of

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

DEVICE_PATH = "/org/bluez/hci0/dev_5A_00_00_00_00_02"


@pytest.fixture
async def bus_address() -> AsyncIterator[str]:
    """A private session bus: its address, while the test runs."""
    daemon = shutil.which("dbus-daemon")
    assert daemon is not None, "the tests need dbus-daemon (Debian: dbus-daemon)"
    process = await asyncio.create_subprocess_exec(
        daemon, "--session", "--nofork", "--print-address=1", stdout=asyncio.subprocess.PIPE
    )
    assert process.stdout is not None
    try:
        address = await asyncio.wait_for(process.stdout.readline(), 10)
        yield address.decode().strip()
    finally:
        process.terminate()
        await process.wait()


async def call(bus: MessageBus, agent: str, member: str, signature: str, body: list[Any]) -> Any:
    reply = await bus.call(
        Message(
            destination=agent,
            path=AGENT_PATH,
            interface="org.bluez.Agent1",
            member=member,
            signature=signature,
            body=body,
        )
    )
    assert reply is not None
    return reply


async def test_the_agent_gives_a_configured_devices_passkey_and_refuses_the_rest(
    bus_address: str,
) -> None:
    """Test RequestPasskey for the configured cuff (its passkey, as D-Bus uint32) and for a
    device with none (org.bluez.Error.Rejected); numeric comparison for an unknown device is
    refused too."""
    agent = PasskeyAgent({"5a:00:00:00:00:02": 24680})
    serving = await MessageBus(bus_address=bus_address).connect()
    asking = await MessageBus(bus_address=bus_address).connect()
    try:
        serving.export(AGENT_PATH, agent)
        name = serving.unique_name
        assert name is not None
        reply = await call(asking, name, "RequestPasskey", "o", [DEVICE_PATH])
        assert (reply.message_type, reply.body) == (MessageType.METHOD_RETURN, [24680])
        other = "/org/bluez/hci0/dev_11_22_33_44_55_66"
        refused = await call(asking, name, "RequestPasskey", "o", [other])
        assert (refused.message_type, refused.error_name) == (
            MessageType.ERROR,
            "org.bluez.Error.Rejected",
        )
        compared = await call(asking, name, "RequestConfirmation", "ou", [other, 123456])
        assert compared.error_name == "org.bluez.Error.Rejected"
        assert agent.asked == ["5A:00:00:00:00:02", "11:22:33:44:55:66"]
    finally:
        serving.disconnect()
        asking.disconnect()


def test_a_device_path_names_its_address() -> None:
    """Test BlueZ's object path of a device turned back into its address."""
    assert address_of(DEVICE_PATH) == "5A:00:00:00:00:02"
