"""Plain HTTP clients of the cloud APIs and their formats; they know nothing of the outbox.

May import ``gateway.errors``, ``config``, ``rate_limits``, ``codec``, ``units`` and ``readings``;
sinks and commands import it, never the other way.
"""
