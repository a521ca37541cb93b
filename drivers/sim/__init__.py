"""A simulated bleak backend: peripherals that advertise, connect and notify like real ones.

Uses the decoders' encoders (``gatt``, ``polar``) to speak the same bytes as real devices;
``ble`` never imports it but through ``ble.backends``, and production code does not know it.
"""
