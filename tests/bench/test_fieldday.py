"""The field day on bumble's Bluetooth stack as a regression guard (issue 20): its faults over
real HCI, ATT and GATT, and the books balanced."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).parents[2] / "bench" / "fieldday.py"


@pytest.mark.timeout(300)
def test_the_field_day_over_bumble_accounts_for_every_sample() -> None:
    """Test the 32-second field day with the devices served on bumble: link drops, out of
    range, malformed packets, the outage, the 429 storm, the broker restart, the ``kill -9``
    and the squeeze all played, and every sample stored, evicted with a count, or lost where
    it may be lost (the bench exits 1 otherwise).
    """
    done = subprocess.run(
        [sys.executable, str(BENCH), "--backend", "bumble"],
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    told = done.stdout[-3000:] + done.stderr[-3000:]  # the bench's table, to say why
    assert done.returncode == 0, told
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["backend"] == "bumble"
    assert figures["unaccounted"] == 0, told
    for lost in ("samples_lost_link_down", "samples_lost_malformed", "samples_lost_at_kill"):
        assert figures[lost] > 0, f"{lost}: {told}"  # the fault was played
    assert figures["samples_evicted"] > 0, told  # the squeeze
    assert figures["vitals_evicted_undelivered"] == 0, told
    assert figures["mqtt_delivered"] > 0, told
