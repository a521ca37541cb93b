"""Sinks: each reads its own backlog from the outbox and acks rows only once delivered."""
