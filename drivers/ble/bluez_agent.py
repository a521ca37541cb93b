"""A BlueZ pairing agent: enters, for each device, the passkey it shows (from config).

BlueZ asks the registered agent (``org.bluez.Agent1`` on the system bus) for the passkey when a
device pairs with passkey entry; bleak registers none, so without one only "just works" pairs
on BlueZ. The agent answers only for the devices it was given, and refuses the rest.
"""

# no `from __future__ import annotations`: dbus-fast reads the D-Bus signatures from the
# methods' annotations at class creation
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping

from dbus_fast import BusType, DBusError, Message, MessageType
from dbus_fast.aio import MessageBus
from dbus_fast.annotations import DBusObjectPath, DBusStr, DBusUInt16, DBusUInt32
from dbus_fast.service import ServiceInterface, dbus_method

log = logging.getLogger(__name__)

AGENT_PATH = "/org/wgw/agent"
_REJECTED = "org.bluez.Error.Rejected"


def address_of(device_path: str) -> str:
    """``/org/bluez/hci0/dev_5A_00_00_00_00_01`` -> ``5A:00:00:00:00:01``."""
    return device_path.rsplit("/", 1)[-1].removeprefix("dev_").replace("_", ":").upper()


class PasskeyAgent(ServiceInterface):
    """``org.bluez.Agent1`` with the keyboard-only capability: passkeys from a table."""

    def __init__(self, passkeys: Mapping[str, int]) -> None:
        super().__init__("org.bluez.Agent1")
        self._passkeys = {address.upper(): passkey for address, passkey in passkeys.items()}
        self.asked: list[str] = []  # the addresses a passkey was asked for, in order

    @dbus_method()
    def Release(self) -> None:  # noqa: N802 - D-Bus names
        """BlueZ let the agent go (it stopped)."""

    @dbus_method()
    def RequestPasskey(self, device: DBusObjectPath) -> DBusUInt32:  # noqa: N802
        """The passkey ``device`` shows (a device not configured with one is refused)."""
        address = address_of(device)
        self.asked.append(address)
        passkey = self._passkeys.get(address)
        if passkey is None:
            log.error("%s asks for a passkey, and none is configured for it", address)
            raise DBusError(_REJECTED, "no passkey configured for this device")
        return passkey

    @dbus_method()
    def DisplayPasskey(  # noqa: N802
        self, device: DBusObjectPath, passkey: DBusUInt32, entered: DBusUInt16
    ) -> None:
        """A passkey for the user to type on the device: not ours to show."""
        del device, passkey, entered

    @dbus_method()
    def RequestPinCode(self, device: DBusObjectPath) -> DBusStr:  # noqa: N802
        """Classic Bluetooth's PIN: refused (the wearables are LE)."""
        raise DBusError(_REJECTED, f"no PIN code for {address_of(device)}")

    @dbus_method()
    def DisplayPinCode(self, device: DBusObjectPath, pincode: DBusStr) -> None:  # noqa: N802
        """Classic Bluetooth's PIN to show: not ours."""
        del device, pincode

    @dbus_method()
    def RequestConfirmation(self, device: DBusObjectPath, passkey: DBusUInt32) -> None:  # noqa: N802
        """Numeric comparison: no one is there to compare, so only configured devices."""
        if address_of(device) not in self._passkeys:
            raise DBusError(_REJECTED, "numeric comparison needs a person")
        del passkey

    @dbus_method()
    def RequestAuthorization(self, device: DBusObjectPath) -> None:  # noqa: N802
        """A pairing without passkey the device started: only configured devices."""
        if address_of(device) not in self._passkeys:
            raise DBusError(_REJECTED, "not a configured device")

    @dbus_method()
    def AuthorizeService(self, device: DBusObjectPath, uuid: DBusStr) -> None:  # noqa: N802
        """A profile connection (classic): allowed."""
        del device, uuid

    @dbus_method()
    def Cancel(self) -> None:  # noqa: N802
        """BlueZ gave up on a request."""


@contextlib.asynccontextmanager
async def passkey_agent(passkeys: Mapping[str, int]) -> AsyncIterator[PasskeyAgent]:
    """The agent registered with BlueZ (as its default) while the block runs.

    Raises:
        DBusError: BlueZ refused it (another program's agent is the default, or no BlueZ).
    """
    bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
    agent = PasskeyAgent(passkeys)
    try:
        bus.export(AGENT_PATH, agent)
        await _call(bus, "RegisterAgent", "os", [AGENT_PATH, "KeyboardOnly"])
        await _call(bus, "RequestDefaultAgent", "o", [AGENT_PATH])
        log.info("BlueZ: passkey agent registered for %d device(s)", len(passkeys))
        try:
            yield agent
        finally:
            with contextlib.suppress(DBusError, OSError):
                await _call(bus, "UnregisterAgent", "o", [AGENT_PATH])
    finally:
        bus.disconnect()


async def _call(bus: MessageBus, member: str, signature: str, body: list[object]) -> None:
    reply = await bus.call(
        Message(
            destination="org.bluez",
            path="/org/bluez",
            interface="org.bluez.AgentManager1",
            member=member,
            signature=signature,
            body=body,
        )
    )
    if reply is None or reply.message_type == MessageType.ERROR:
        name = reply.error_name if reply is not None else "no reply"
        raise DBusError(name or "org.bluez.Error.Failed", f"{member}: {reply and reply.body}")
