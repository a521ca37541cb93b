"""The daemon's local HTTP side: the status API and its routes, Prometheus metrics, the live feed.

It reads the daemon through ``DaemonStatistics`` snapshots and a small source protocol and never
imports the daemon; sinks and the pipeline do not import it either (the daemon wires it in).
"""
