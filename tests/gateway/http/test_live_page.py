"""The live page in a real headless Chromium: it loads behind the token, a device appears with
its state and vitals, and its PPG trace moves between two screenshots.
"""

from __future__ import annotations

import asyncio
import shutil
from typing import TYPE_CHECKING

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from gateway.config import Settings
from gateway.daemon import Daemon
from tests.support import daemon_config, wait_for

if TYPE_CHECKING:
    from pathlib import Path

    from aiohttp.test_utils import TestServer

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
TOKEN = "live-page-token"


def text_of(driver: webdriver.Chrome, selector: str) -> str | None:
    """An element's text read in one step in the page (the page redraws its cards as data
    comes: an element found, then read, may be gone by then).
    """
    text = driver.execute_script(
        "const e = document.querySelector(arguments[0]); return e ? e.innerText : null;", selector
    )
    return None if text is None else str(text)


def trace_png(driver: webdriver.Chrome, selector: str) -> bytes:
    """A screenshot of the trace's canvas, found afresh (redraws replace it)."""
    png: bytes = driver.find_element(By.CSS_SELECTOR, selector).screenshot_as_png
    return png


def browse(base: str, folder: Path) -> dict[str, object]:
    """What the page shows, read through the browser (blocking: runs in a thread)."""
    options = Options()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1200,900"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    try:
        driver.get(f"{base}/?token={TOKEN}")  # sets the cookie, redirects to the page
        wait = WebDriverWait(driver, 20, ignored_exceptions=[StaleElementReferenceException])
        card = 'section.device[data-device="watch-01"]'
        canvas = f'{card} canvas[data-trace="watch-01/ppg"]'
        wait.until(lambda d: d.find_element(By.CSS_SELECTOR, canvas))
        wait.until(lambda d: text_of(d, f"{card} .state") == "connected")
        wait.until(lambda d: text_of(d, f'{card} [data-vital="heart_rate"]'))
        wait.until(
            lambda d: d.find_elements(By.CSS_SELECTOR, '#sinks tr[data-sink="health_upload"]')
        )
        first = trace_png(driver, canvas)
        second = wait.until(lambda d: (png := trace_png(d, canvas)) != first and png)  # it moves
        driver.save_screenshot(str(folder / "page.png"))
        return {
            "meta": text_of(driver, f"{card} .meta"),
            "first": first,
            "second": second,
            "heart_rate": text_of(driver, f'{card} [data-vital="heart_rate"]'),
            "url": driver.current_url,
        }
    finally:
        driver.quit()


async def test_the_live_page_shows_a_device_and_a_moving_trace(
    tmp_path: Path, emulator: TestServer
) -> None:
    """Test the page end to end: daemon -> SSE -> canvas, in Chromium."""
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.fail(
            "this test needs Debian's chromium and chromium-driver: `make test` installs them"
        )
    raw = daemon_config(
        tmp_path,
        str(emulator.make_url("")),
        [
            {
                "model": "watch",
                "address": "5A:00:00:00:00:01",
                "heart_rate_interval_ms": 200,
                "blood_pressure_interval_s": 1,
            }
        ],
        [
            {
                "id": "watch-01",
                "address": "5A:00:00:00:00:01",
                "pmd": [
                    {
                        "measurement": "ppg",
                        "sample_rate_hz": 55,
                        "resolution_bits": 22,
                        "channels": 4,
                    }
                ],
            }
        ],
        http={"enabled": True, "port": 0, "token": TOKEN},
    )
    daemon = Daemon(Settings.model_validate(raw))
    runner = asyncio.create_task(daemon.run())
    try:
        await daemon.wait_ready()

        async def streaming() -> bool:
            return (await daemon.statistics()).devices[0].samples > 50

        await wait_for(streaming)
        # a spell out of range: three blood pressure readings to fetch from the watch's memory
        assert daemon.sim_world is not None
        daemon.sim_world.peripherals["5A:00:00:00:00:01"].go_out_of_range(3.0)

        async def filled() -> bool:
            streams = (await daemon.statistics()).devices[0].streams
            return any(s.gaps_filled for s in streams) and all(
                s.last_time_s for s in streams if s.stream == "heart_rate"
            )

        await wait_for(filled, timeout_s=20)
        assert daemon.status_url is not None
        seen = await asyncio.to_thread(browse, daemon.status_url, tmp_path)
    finally:
        daemon.stop()
        await runner
    assert seen["url"] == f"{daemon.status_url}/"
    assert str(seen["heart_rate"]).endswith("bpm")
    assert seen["first"] != seen["second"]  # the trace scrolled
    # the gaps the spell left: blood pressure filled from the watch's records, the rest open
    meta = str(seen["meta"])
    assert "1 filled" in meta and "heart_rate" in meta, meta
    assert int(meta.rsplit("backfilled ", 1)[1]) >= 2, meta
    assert daemon.live_feed().subscribers == 0  # the page's stream ended with it
