"""Bluetooth links over bleak's public API, whichever backend is underneath.

``link`` supervises one device; ``decoding`` (pure), ``framing``, ``record_transfers``,
``watchdog`` and ``link_errors`` are its parts; ``discovery`` scans, ``adapter`` watches the
controller, ``backends`` picks bleak's classes (the platform's, or the simulator's).
"""
