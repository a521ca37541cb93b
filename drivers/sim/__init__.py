"""A simulated bleak backend: peripherals that advertise, connect and notify like real ones."""
