"""Sinks: each reads its own backlog from the outbox and acks rows only once delivered.

The sinks know nothing of each other (import-linter); each may import ``clients``, ``codec``,
``readings`` and ``buffers.outbox``, never the daemon.
"""
