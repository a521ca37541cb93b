"""Sources: Bluetooth Low Energy devices, their decoders, and a simulated bleak backend."""
