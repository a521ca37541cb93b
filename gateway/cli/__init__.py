"""The ``wgw`` command line: one module per command, each importing only what its job needs.

``entry`` finds the command, imports its module and parses; ``common`` holds the shared options,
the one way to load settings, and the exit codes; ``daemon_client`` talks to a running daemon's
local API. Nothing outside this package imports it (the console script and ``python -m
gateway`` start here): it may import anything in ``gateway``, ``drivers`` and ``buffers``.
"""
