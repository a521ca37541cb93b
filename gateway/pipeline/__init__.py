"""The signal chain between the drivers and the conversion sink: grid, filter, resample, windows.

Pure numpy/scipy over arrays; imports nothing of the daemon, the sinks or the outbox.
"""
