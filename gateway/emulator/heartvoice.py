"""The HeartVoice lab API in the emulator (API.md A): PPG -> ECG, 1 -> 12 leads, 3 -> 12 leads.

Outputs are plausible, not clinical: ``ppgFlowEcg`` puts a PQRST beat with its R peak a pulse
transit time before each PPG systolic peak; ``mcma`` and ``lead3Lead12`` project the input with
the Einthoven and Goldberger relations for the limb leads and a Dower-like linear combination
for the chest leads. Lead order: I, II, III, aVR, aVL, aVF, V1-V6. Output rate = input rate.
"""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any, Final

import numpy as np
from aiohttp import web
from scipy import signal

from drivers.sim.signals import HeartModel
from gateway import ecg_image

if TYPE_CHECKING:
    from numpy.typing import NDArray

PREFIX: Final = "/api/v1/experimental"
R_BEFORE_PPG_PEAK_S: Final = 0.25  # pulse transit time plus the pulse's rise
MIN_SECONDS: Final = 2.0
# chest leads from (lead I, aVF): a Dower-style frontal-plane approximation
_CHEST: Final = np.array(
    [[-0.35, -0.15], [0.10, 0.30], [0.45, 0.50], [0.70, 0.65], [0.85, 0.55], [0.80, 0.40]]
)
_PQRST: Final = (
    (-0.15, 0.12, 0.025),
    (-0.02, -0.10, 0.008),
    (0.0, 1.10, 0.010),
    (0.02, -0.22, 0.010),
    (0.25, 0.28, 0.045),
)  # (offset s, mV, width s)


def answer(data: object, code: str = "0", msg: str = "成功", status: int = 200) -> web.Response:
    """The HeartVoice envelope: ``errorCode`` "0" is success, anything else a failure."""
    return web.json_response({"errorCode": code, "msg": msg, "data": data}, status=status)


def _rate(body: dict[str, Any], *names: str) -> float | None:
    for name in names:
        value = body.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


def _signal(body: dict[str, Any], field: str, leads: int) -> NDArray[np.float64] | str:
    raw = body.get(field)
    try:
        array = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError):
        return f"{field} must be numbers"
    expected = 1 if leads == 1 else 2
    if array.ndim != expected or array.size == 0 or (leads > 1 and array.shape[0] != leads):
        shape = "a list of numbers" if leads == 1 else f"{leads} lists of numbers of equal length"
        return f"{field} must be {shape}"
    if not np.isfinite(array).all():
        return f"{field} has values that are not finite"
    return array


def _parse(
    body: object, field: str, leads: int, rate_names: tuple[str, ...]
) -> tuple[NDArray[np.float64], float] | web.Response:
    if not isinstance(body, dict):
        return answer(None, "400", "body must be a JSON object", 400)
    rate = _rate(body, *rate_names)
    if rate is None:
        return answer(None, "400", f"sample rate missing: send one of {', '.join(rate_names)}", 400)
    if not 50 <= rate <= 2000:
        return answer(None, "400", "sample rate must be 50-2000 Hz (250-500 recommended)", 400)
    data = _signal(body, field, leads)
    if isinstance(data, str):
        return answer(None, "400", data, 400)
    if data.shape[-1] < MIN_SECONDS * rate:
        # HTTP 200 with a failure code: the seed says errorCode rules, whatever the status
        return answer(None, "1001", f"signal too short: at least {MIN_SECONDS:g} s needed")
    return data, rate


def ppg_to_ecg(ppg: NDArray[np.float64], rate: float) -> NDArray[np.float64]:
    """One ECG lead (mV) whose R peaks sit a transit time before the PPG's systolic peaks."""
    sos = signal.butter(2, [0.5, min(8.0, 0.45 * rate)], btype="bandpass", fs=rate, output="sos")
    filtered = signal.sosfiltfilt(sos, ppg - ppg.mean())
    spread = float(np.percentile(filtered, 95) - np.percentile(filtered, 5)) or 1.0
    peaks, _ = signal.find_peaks(filtered, distance=int(0.3 * rate), prominence=spread / 3)
    t = np.arange(len(ppg)) / rate
    ecg = np.zeros_like(t)
    for r in peaks / rate - R_BEFORE_PPG_PEAK_S:
        for offset, amplitude, width in _PQRST:
            ecg += amplitude * np.exp(-(((t - r - offset) / width) ** 2))
    return ecg


def twelve_from_limb(
    lead_i: NDArray[np.float64], lead_ii: NDArray[np.float64]
) -> NDArray[np.float64]:
    """12 leads from leads I and II: Einthoven, Goldberger, then the chest projection."""
    lead_iii = lead_ii - lead_i
    avr, avl, avf = -(lead_i + lead_ii) / 2, lead_i - lead_ii / 2, lead_ii - lead_i / 2
    chest = _CHEST @ np.vstack([lead_i, avf])
    return np.vstack([lead_i, lead_ii, lead_iii, avr, avl, avf, chest])


async def ppg_flow_ecg(request: web.Request) -> web.Response:
    """``POST /ppgFlowEcg``: ``ppgData`` + ``ppgSampleRate`` (or ``ecgSampleRate``)."""
    parsed = _parse(await _body(request), "ppgData", 1, ("ppgSampleRate", "ecgSampleRate"))
    if isinstance(parsed, web.Response):
        return parsed
    ppg, rate = parsed
    return answer([ppg_to_ecg(ppg, rate).round(5).tolist()])


async def mcma(request: web.Request) -> web.Response:
    """``POST /mcma``: one lead (taken as lead II) -> 12 leads."""
    parsed = _parse(await _body(request), "ecgData", 1, ("ecgSampleRate", "ecgSamplerate"))
    if isinstance(parsed, web.Response):
        return parsed
    lead_ii, _ = parsed
    # a frontal axis near +60 degrees: lead I is about half of lead II
    return answer(twelve_from_limb(0.5 * lead_ii, lead_ii).round(5).tolist())


async def lead3_lead12(request: web.Request) -> web.Response:
    """``POST /lead3Lead12``: leads I, II, III -> 12 leads."""
    parsed = _parse(await _body(request), "ecgData", 3, ("ecgSampleRate", "ecgSamplerate"))
    if isinstance(parsed, web.Response):
        return parsed
    leads, _ = parsed
    return answer(twelve_from_limb(leads[0], leads[1]).round(5).tolist())


async def _body(request: web.Request) -> object:
    try:
        return await request.json()
    except ValueError:
        return None


def authorised(request: web.Request, api_key: str) -> web.Response | None:
    """The lab API wants ``Authorization: Bearer <API key>``."""
    if request.headers.get("Authorization", "") != f"Bearer {api_key}":
        return answer(None, "401", "invalid or missing API key", 401)
    return None


async def diffusets(request: web.Request) -> web.Response:
    """``POST /diffuSets``: text, age, sex, hr (and batch) -> 12-lead ECG images (PNG, base64).

    The images show a sinus rhythm at the requested heart rate; the text is not interpreted.
    """
    body = await _body(request)
    if not isinstance(body, dict):
        return answer(None, "400", "body must be a JSON object", 400)
    problem = _diffusets_problem(body)
    if problem is not None:
        return answer(None, "400", problem, 400)
    images = []
    for i in range(int(body.get("batch", 1))):
        heart = HeartModel(seed=i, resting_bpm=float(body["hr"]))
        heart.resting_bpm, heart.swing_bpm = float(body["hr"]), 0.0
        t = np.arange(0, 10, 1 / 500)
        lead_ii = heart.ecg_mv(t)[:, 0]
        png = ecg_image.draw_sheet(twelve_from_limb(0.5 * lead_ii, lead_ii).tolist(), 500)
        images.append(base64.b64encode(png).decode())
    # the seed's shape: textImg is a JSON string holding the list
    return answer({"textImg": json.dumps(images)})


def _diffusets_problem(body: dict[str, Any]) -> str | None:
    if not isinstance(body.get("text"), str) or not body["text"].strip():
        return "text is required (diagnoses joined by |)"
    age = body.get("age")
    if not isinstance(age, int) or isinstance(age, bool) or not 0 <= age <= 120:
        return "age must be an integer 0-120"
    if body.get("sex") not in ("M", "F"):
        return 'sex must be "M" or "F"'
    hr = body.get("hr")
    if not isinstance(hr, int) or isinstance(hr, bool) or not 30 <= hr <= 220:
        return "hr must be an integer 30-220"
    batch = body.get("batch", 1)
    if not isinstance(batch, int) or isinstance(batch, bool) or not 1 <= batch <= 4:
        return "batch must be an integer 1-4"
    return None
