"""The gateway: configuration, pipeline, sinks, daemon, CLI, and the cloud emulator."""
