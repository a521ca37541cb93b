"""Bluetooth links over bleak's public API, whichever backend is underneath.

``link`` supervises one device (``link_spec``: what it is given and what it reports); its parts
are ``decoding`` (pure), ``framing``, ``record_transfers``, ``watchdog`` and ``link_errors``.
``discovery`` scans, ``adapter`` watches the controller, ``backends`` picks bleak's classes (the
platform's, or the simulator's).
"""
