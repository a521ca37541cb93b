"""The durable outbox: every reading stored once, each sink's backlog, delivery in order.

``Outbox`` (``facade``) is the whole interface; its parts each own their state: ``index`` (the
SQLite index and the segment log, the connection, contexts, replay), ``writer`` (group commit,
de-duplication, held records while the store fails), ``room`` (the size cap and a full disk),
``leases`` (reads for delivery), ``clock`` (corrections after a wall-clock jump),
``statistics``. The package imports only ``buffers`` and third-party libraries.
"""

from buffers.outbox.facade import Outbox

__all__ = ["Outbox"]
