"""``wgw status``'s tables from a status document: gaps, and what backfill filled."""

from __future__ import annotations

from rich.console import Console

from gateway.cli.status import draw


def test_a_stream_shows_its_gaps_and_what_the_devices_records_filled() -> None:
    """Test the gaps column: plain where nothing was fetched, with the fills where it was; and
    why uploads wait, when they do."""
    stream = {"last_time_s": None, "units": 3, "expected_units": None}
    status = {
        "devices": [
            {
                "device_id": "cuff",
                "connected": True,
                "battery_pct": 80,
                "rssi_dbm": -60,
                "streams": [
                    {
                        **stream,
                        "stream": "blood_pressure",
                        "gaps": 2,
                        "gaps_filled": 1,
                        "backfilled": 60,
                    },
                    {**stream, "stream": "battery", "gaps": 1, "gaps_filled": 0, "backfilled": 0},
                ],
            }
        ],
        "outbox": {"backlog": {}},
        "health_upload": {
            "requests": 0,
            "records_uploaded": 0,
            "retries": 0,
            "last_error": None,
            "waiting_for": "waiting for Wi-Fi (sync.upload_when.network)",
        },
        "health_upload_drain_eta_s": 0.0,
        "clock_synced": True,
        "clock_jumps": 0,
        "clock_disagreements_s": {},
    }
    console = Console(record=True, width=160)
    draw(status, console)
    text = console.export_text()
    assert "2 (1 filled, 60 backfilled)" in text
    assert "waiting: waiting for Wi-Fi (sync.upload_when.network)" in text  # why uploads wait
    battery = next(line for line in text.splitlines() if "battery" in line and "│" in line)
    assert battery.rstrip(" │").endswith("1")
