"""A real Bluetooth stack under the gateway: bumble's host and controllers on a virtual radio.

``radio`` (one in-process ``LocalLink`` and the devices on it), ``peripheral`` (a simulated
wearable's GATT table served by a bumble device), ``scanner`` and ``client`` (bleak's backend
classes over a bumble central). Production code reaches it only through ``ble.backends``;
bumble is an optional extra (``pip install 'wearable-gateway[bumble]'``), not a dependency of
the daemon. Imports ``drivers.sim`` (the device models) and bleak's backend bases.
"""
