"""Errors raised by the driver layer.

Tree::

    DriverError
    ├── DeviceNotFound   a configured device did not advertise within the scan timeout
    ├── LinkLost         the link dropped while the session needed it
    └── DecodeError      a notification's bytes do not follow their profile
"""

from __future__ import annotations


class DriverError(Exception):
    """Base of every error the driver layer raises."""


class DeviceNotFound(DriverError):  # noqa: N818 - the name says what happened, like bleak's
    """A configured device was not seen while scanning."""

    def __init__(self, address: str, timeout_s: float) -> None:
        super().__init__(f"device {address} not found within {timeout_s:g} s")
        self.address = address
        self.timeout_s = timeout_s


class LinkLost(DriverError):  # noqa: N818
    """The BLE link dropped."""

    def __init__(self, address: str) -> None:
        super().__init__(f"link to {address} lost")
        self.address = address


class DecodeError(DriverError):
    """A payload is malformed for the profile it was decoded with."""

    def __init__(self, profile: str, reason: str) -> None:
        super().__init__(f"{profile}: {reason}")
        self.profile = profile
        self.reason = reason
