"""Decoders (and the simulator's encoders) for the Bluetooth SIG's standard GATT characteristics.

Pure functions of bytes; they import only ``drivers.errors`` and each other.
"""
