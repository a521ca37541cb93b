"""A local, contract-faithful emulator of the two cloud APIs of API.md, over real HTTP.

Imports the TCM client's constants, ``codec``, ``ecg_image``, ``rate_limits`` and the simulator's
signals (its PPG -> ECG answers); nothing of the daemon, the sinks or the outbox.
"""
