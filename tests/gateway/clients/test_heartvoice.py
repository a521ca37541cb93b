"""HeartVoiceClient against the emulator: PPG -> ECG alignment, 12 leads, envelopes, errors."""

from __future__ import annotations

import logging
import struct
from typing import TYPE_CHECKING

import aiohttp
import numpy as np
import pytest
from pydantic import SecretStr
from scipy import signal

from drivers.sim.signals import HeartModel
from gateway.clients.heartvoice import HeartVoiceClient
from gateway.config import HeartVoiceConfig
from gateway.errors import AuthError, PermanentSinkError

if TYPE_CHECKING:
    from aiohttp.test_utils import TestServer

RATE = 500


def config(server: TestServer, key: str = "heartvoice-demo-key") -> HeartVoiceConfig:
    return HeartVoiceConfig(base_url=str(server.make_url("")).rstrip("/"), api_key=SecretStr(key))


async def test_ppg_to_ecg_beats_line_up_with_the_pulses(emulator: TestServer) -> None:
    """Test one lead back, same length, one R peak per pulse, a transit time before it."""
    heart = HeartModel(seed=3)
    t = np.arange(0, 10, 1 / RATE)
    ppg = 1000.0 * heart.pulse_wave(t)
    async with aiohttp.ClientSession() as session:
        ecg = np.asarray(
            await HeartVoiceClient(session, config(emulator)).ppg_to_ecg(ppg.tolist(), RATE)
        )
    assert ecg.shape == t.shape
    r_peaks, _ = signal.find_peaks(ecg, height=0.6)
    ppg_peaks, _ = signal.find_peaks(ppg, distance=int(0.4 * RATE), prominence=500)
    assert abs(len(r_peaks) - len(ppg_peaks)) <= 1
    lead = [(p - r) / RATE for p in ppg_peaks for r in r_peaks if 0 < (p - r) / RATE < 0.5]
    assert np.median(lead) == pytest.approx(0.25, abs=0.02)


async def test_twelve_leads_obey_einthoven_and_goldberger(emulator: TestServer) -> None:
    """Test mcma and lead3Lead12: 12 leads, III = II - I, aVR = -(I + II) / 2."""
    heart = HeartModel(seed=1)
    t = np.arange(0, 4, 1 / RATE)
    limb = heart.ecg_mv(t, 3).T  # I, II, III
    async with aiohttp.ClientSession() as session:
        client = HeartVoiceClient(session, config(emulator))
        from_one = np.asarray(await client.twelve_leads(limb[1].tolist(), RATE))
        from_three = np.asarray(await client.twelve_from_three(limb.tolist(), RATE))
    for leads in (from_one, from_three):
        assert leads.shape == (12, len(t))
        np.testing.assert_allclose(leads[2], leads[1] - leads[0], atol=1e-4)
        np.testing.assert_allclose(leads[3], -(leads[0] + leads[1]) / 2, atol=1e-4)
    np.testing.assert_allclose(from_three[1], limb[1], atol=1e-4)


async def test_failures_keep_the_code_and_message(
    emulator: TestServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Test a refused key (AuthError), and errorCode "1001" with HTTP 200 (permanent)."""
    caplog.set_level(logging.DEBUG)
    async with aiohttp.ClientSession() as session:
        with pytest.raises(AuthError) as refused:
            await HeartVoiceClient(session, config(emulator, "wrong-key-123")).ppg_to_ecg(
                [1.0] * 2000, RATE
            )
        with pytest.raises(PermanentSinkError) as short:
            await HeartVoiceClient(session, config(emulator)).ppg_to_ecg([1.0] * 100, RATE)
    assert refused.value.status == 401
    assert short.value.code == "1001"
    assert short.value.status == 200
    assert "too short" in str(short.value)
    assert "wrong-key-123" not in caplog.text + str(refused.value)


async def test_emulator_accepts_either_rate_spelling_and_explains_a_missing_one(
    emulator: TestServer,
) -> None:
    """Test the API.md decision on the sample-rate field names."""
    headers = {"Authorization": "Bearer heartvoice-demo-key"}
    url = emulator.make_url("/api/v1/experimental/mcma")
    async with aiohttp.ClientSession() as session:
        for field in ("ecgSampleRate", "ecgSamplerate"):
            async with session.post(
                url, json={"ecgData": [0.0] * 1000, field: 500}, headers=headers
            ) as r:
                assert r.status == 200
                assert (await r.json())["errorCode"] == "0"
        async with session.post(url, json={"ecgData": [0.0] * 1000}, headers=headers) as r:
            body = await r.json()
    assert r.status == 400
    assert body["errorCode"] == "400"
    assert "sample rate missing" in body["msg"]


async def test_diffusets_returns_real_png_images(emulator: TestServer) -> None:
    """Test two PNG images of the clinical layout (1040 x 648 px) for a text and a heart rate."""
    async with aiohttp.ClientSession() as session:
        client = HeartVoiceClient(session, config(emulator))
        images = await client.diffusets(["sinus rhythm", "normal ECG"], 54, "F", 72, batch=2)
        with pytest.raises(PermanentSinkError, match="sex"):
            await client.diffusets(["x"], 54, "X", 72)
    assert len(images) == 2
    for png in images:
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        width, height = struct.unpack(">II", png[16:24])
        assert (width, height) == (1040, 648)
