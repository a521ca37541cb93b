"""The opt-in BlueZ check (``make bluez-check``): the gateway on bleak's BlueZ backend in a VM."""
