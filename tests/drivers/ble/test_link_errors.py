"""The link's error table: each failure's class from the exception bleak raises, and its wait."""

from __future__ import annotations

import pytest
from bleak.exc import BleakDBusError, BleakDeviceNotFoundError, BleakError

from drivers.backoff import Backoff
from drivers.ble import link_errors
from drivers.errors import DeviceNotFound


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (BleakDBusError("org.bluez.Error.InProgress", ["Operation already in progress"]),
         "in_progress"),
        (BleakError("AA: org.bluez.Error.Failed: le-connection-abort-by-local"), "aborted"),
        (BleakError("ESP_GATT_CONN_FAIL_ESTABLISH"), "aborted"),
        (BleakError("No backend with an available connection slot that can reach address"),
         "out_of_slots"),
        (BleakDBusError("org.freedesktop.DBus.Error.UnknownObject", []), "not_found"),
        (BleakDeviceNotFoundError("AA", "Device with address AA was not found."), "not_found"),
        (DeviceNotFound("AA", 10.0), "not_found"),
        (TimeoutError(), "timeout"),
        (BleakError("Characteristic 2a37 was not found"), "other"),
        (FileNotFoundError("no D-Bus"), "other"),
    ],
)  # fmt: skip
def test_each_failure_has_its_class(exc: BaseException, expected: str) -> None:
    """Test the texts BlueZ, bleak and ESPHome proxies give, each to its class."""
    assert link_errors.classify(exc).name == expected


def test_transient_failures_retry_after_their_floor_then_back_off() -> None:
    """Test three 'In Progress' in a row at the floor, the fourth with the exponential backoff."""
    reconnects = link_errors.Reconnects(Backoff(0.5, 30.0))
    waits = [reconnects.delay_after(link_errors.IN_PROGRESS) for _ in range(3)]
    assert waits == [0.25, 0.25, 0.25]
    fourth = reconnects.delay_after(link_errors.IN_PROGRESS)
    assert 0.25 <= fourth <= 0.25 + min(30.0, 0.5 * 2**3)
    assert reconnects.by_class == {"in_progress": 4}


def test_out_of_slots_waits_at_least_four_seconds_and_a_session_resets_the_count() -> None:
    """Test the out-of-slots floor, growth over repeated failures, and the reset at a connect."""
    reconnects = link_errors.Reconnects(Backoff(0.5, 30.0))
    waits = [reconnects.delay_after(link_errors.OUT_OF_SLOTS) for _ in range(6)]
    assert all(w >= 4.0 for w in waits)
    assert all(w <= 4.0 + 30.0 for w in waits)
    reconnects.connected()
    after_loss = reconnects.delay_after(link_errors.LINK_LOST)
    assert 0.0 <= after_loss <= 0.5  # a session ran: the first reconnect comes soon
    assert reconnects.by_class == {"out_of_slots": 6, "link_lost": 1}
