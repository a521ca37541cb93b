"""Storage: the durable outbox every sink reads its backlog from, and what reads the file offline.

Rooms: ``outbox`` (the package the daemon writes through), ``segments`` (the append-only log),
``schema`` and ``recovery`` (the SQLite index's shape and its repair), ``retention``,
``inspect`` (read-only queries for the command line and exports). Imports no ``gateway`` and
no ``drivers`` module.
"""
