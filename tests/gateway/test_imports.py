"""What the daemon loads: the signal chain (scipy, ~65 MB resident) only with conversion on."""

from __future__ import annotations

import subprocess
import sys


def test_the_daemon_without_conversion_does_not_load_scipy() -> None:
    """Test a fresh interpreter: ``wgw run``'s modules leave scipy out; the sink brings it."""
    probe = (
        "import sys, gateway.cli.entry, gateway.daemon;"
        "print('scipy' in sys.modules, end=' ');"
        "import gateway.sinks.conversion;"
        "print('scipy' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.split() == ["False", "True"]
