"""Bluetooth sessions over bleak's public API, whichever backend is underneath."""
