"""Stored waveforms, vitals and markers in formats researchers load directly (CSV, WFDB, EDF+).

Reads rows through ``buffers.inspect`` and decodes them with ``codec``; ``wgw export``
(``gateway.cli.export``) drives it.
"""
