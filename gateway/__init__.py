"""The gateway: the daemon and what it composes, from decoded frames to every sink.

Rooms: ``daemon`` (wiring, the pipeline loop, bounded shutdown), ``pipeline`` (signal chain),
``sinks`` (MQTT, health upload, conversion), ``clients`` (the cloud APIs), ``http`` (status
API, metrics, live page), ``cli`` (the command line, on top of everything), ``emulator``,
``export``. It may import ``drivers`` and ``buffers``; they never import it (import-linter).
"""
