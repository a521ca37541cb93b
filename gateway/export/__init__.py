"""``wgw export``: stored waveforms, vitals and markers in formats researchers load directly."""
