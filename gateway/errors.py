"""Errors raised by the gateway layer.

Tree::

    GatewayError
    ├── ConfigError             the configuration is refused (one line per problem)
    └── SinkError               a sink could not deliver
        ├── AuthError           credentials refused, after one re-login
        ├── RetryableSinkError  may succeed later (5xx, 429, network); ``retry_after_s``
        └── PermanentSinkError  will never succeed as sent (400, 403, 422); dead-letter it
"""

from __future__ import annotations


class GatewayError(Exception):
    """Base of every error the gateway layer raises."""


class ConfigError(GatewayError):
    """The configuration cannot be used; ``problems`` holds ``path: reason`` lines."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class SinkError(GatewayError):
    """A delivery failed; ``code`` and ``request_id`` are the server's when it sent them."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        request_id: str | None = None,
        details: dict[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.request_id = request_id
        self.details = details or {}


class AuthError(SinkError):
    """The server refused our credentials even after logging in again."""


class RetryableSinkError(SinkError):
    """Worth retrying: after ``retry_after_s`` when the server said so, else by backoff."""

    def __init__(
        self,
        message: str,
        *,
        retry_after_s: float | None = None,
        code: str | None = None,
        status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, code=code, status=status, request_id=request_id)
        self.retry_after_s = retry_after_s


class PermanentSinkError(SinkError):
    """Never worth retrying as sent."""
