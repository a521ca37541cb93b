"""A local, contract-faithful emulator of the two cloud APIs of API.md, over real HTTP."""
