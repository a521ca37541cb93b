"""Decoders for the Bluetooth SIG's standard GATT characteristics."""
