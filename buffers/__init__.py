"""Storage: the durable SQLite outbox every sink reads its backlog from."""
