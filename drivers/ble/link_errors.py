"""What a failed connection attempt says, and how long the link waits before the next one.

bleak raises one ``BleakError`` for most failures; its text says which. The classes follow
bleak-retry-connector's table (Home Assistant's Bluetooth stack): BlueZ still busy with the last
attempt ("In Progress"), the controller aborting the connection (``le-connection-abort-by-local``,
a peripheral that did not answer or interference), the adapter or proxy out of connection
slots, the device gone from the adapter's view, a timeout. Transient classes are retried after
a short floor; the others back off exponentially. Every class is counted per device.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from bleak.exc import BleakDeviceNotFoundError, BleakError

from drivers.errors import DeviceNotFound

if TYPE_CHECKING:
    from drivers.backoff import Backoff


@dataclass(frozen=True, slots=True)
class ErrorClass:
    """One kind of connection failure and its wait.

    ``floor_s``: the least wait before trying again (the stack needs it to clean up);
    ``transient``: retried after the floor alone, up to ``MAX_TRANSIENT`` times in a row, before
    the exponential backoff applies.
    """

    name: str
    floor_s: float
    transient: bool = False


IN_PROGRESS: Final = ErrorClass("in_progress", 0.25, transient=True)
ABORTED: Final = ErrorClass("aborted", 0.5, transient=True)
OUT_OF_SLOTS: Final = ErrorClass("out_of_slots", 4.0)
NOT_FOUND: Final = ErrorClass("not_found", 0.0)
TIMEOUT: Final = ErrorClass("timeout", 0.25)
OTHER: Final = ErrorClass("other", 0.1)
LINK_LOST: Final = ErrorClass("link_lost", 0.0)  # a session that ran and ended: reconnect soon
# the device wants an encrypted link the gateway could not make (not paired, pairing refused,
# a bond the device forgot): nothing changes until someone acts, so no hurry
ENCRYPTION: Final = ErrorClass("encryption", 2.0)

MAX_TRANSIENT: Final = 3

# (text in the error, its class), first match wins; texts as BlueZ, bleak and ESPHome say them
_BY_TEXT: Final = (
    ("available connection", OUT_OF_SLOTS),
    ("connection slot", OUT_OF_SLOTS),
    ("org.bluez.Error.InProgress", IN_PROGRESS),
    ("Operation already in progress", IN_PROGRESS),
    ("le-connection-abort-by-local", ABORTED),
    ("br-connection-canceled", ABORTED),
    ("ESP_GATT_CONN_FAIL_ESTABLISH", ABORTED),
    ("ESP_GATT_CONN_TERMINATE_PEER_USER", ABORTED),
    ("org.freedesktop.DBus.Error.UnknownObject", NOT_FOUND),
    ("ATT error: 0x05", ENCRYPTION),  # insufficient authentication
    ("ATT error: 0x0f", ENCRYPTION),  # insufficient encryption
    ("Insufficient Authentication", ENCRYPTION),
    ("Insufficient Encryption", ENCRYPTION),
    ("org.bluez.Error.AuthenticationFailed", ENCRYPTION),
    ("pairing failed", ENCRYPTION),
    ("this gateway's bond", ENCRYPTION),
)


def classify(exc: BaseException) -> ErrorClass:
    """The class of a failed attempt's exception."""
    if isinstance(exc, (DeviceNotFound, BleakDeviceNotFoundError)):
        return NOT_FOUND
    if isinstance(exc, TimeoutError):
        return TIMEOUT
    if isinstance(exc, BleakError):
        text = str(exc)
        for needle, error_class in _BY_TEXT:
            if needle in text:
                return error_class
    return OTHER


class Reconnects:
    """The waits between one link's attempts: per class, and growing while failures repeat."""

    def __init__(self, backoff: Backoff) -> None:
        self._backoff = backoff
        self._failures = 0  # attempts in a row that did not connect
        self._transient = 0  # of them, transient ones
        self.by_class: dict[str, int] = {}

    def connected(self) -> None:
        """A session ran: the next loss starts the count again."""
        self._failures = 0
        self._transient = 0

    def delay_after(self, error_class: ErrorClass) -> float:
        """Count the failure; the wait before the next attempt."""
        self.by_class[error_class.name] = self.by_class.get(error_class.name, 0) + 1
        if error_class is LINK_LOST:
            return self._backoff.delay_s(1)
        self._failures += 1
        if error_class.transient and self._transient < MAX_TRANSIENT:
            self._transient += 1
            return error_class.floor_s
        return error_class.floor_s + self._backoff.delay_s(self._failures)
