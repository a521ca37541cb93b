"""Sources: Bluetooth Low Energy devices, their decoders, and a simulated bleak backend.

Rooms: ``gatt`` and ``polar`` (pure decoders, bytes -> values), ``ble`` (links over bleak's
public API), ``sim`` (a bleak backend of simulated wearables); ``frames`` is what leaves the
layer, ``bounded`` and ``backoff`` are shared with the gateway. Imports no ``gateway`` and
no ``buffers`` module.
"""
