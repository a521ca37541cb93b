"""Tongue analysis and 12-meridian diagnosis in the emulator.

Deterministic, schema-complete answers derived from their inputs: the same image or the same
vital signs always give the same answer.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from aiohttp import web

MERIDIANS: Final = (
    "lung",
    "large_intestine",
    "stomach",
    "spleen",
    "heart",
    "small_intestine",
    "bladder",
    "kidney",
    "pericardium",
    "triple_burner",
    "gallbladder",
    "liver",
)
_COLORS: Final = ("pale", "light_red", "red", "crimson", "purple")
_COATINGS: Final = ("thin_white", "thick_white", "thin_yellow", "thick_yellow", "greasy")
_SHAPES: Final = ("normal", "swollen", "thin", "tooth_marked", "cracked")


def tongue_answer(image: bytes, analysis_type: str, include_meridian: bool) -> dict[str, Any]:
    """The analysis for one image."""
    digest = hashlib.sha256(image).digest()
    answer: dict[str, Any] = {
        "success": True,
        "analysis_id": "tg_" + digest[:8].hex(),
        "analysis_type": analysis_type,
        "analysis": {
            "tongue_color": _COLORS[digest[0] % len(_COLORS)],
            "coating": _COATINGS[digest[1] % len(_COATINGS)],
            "tongue_shape": _SHAPES[digest[2] % len(_SHAPES)],
            "sublingual_veins": "distended" if digest[3] % 4 == 0 else "normal",
        },
        "meridian_correlation": [],
        "health_insights": [f"{_COLORS[digest[0] % len(_COLORS)]} tongue noted"],
    }
    if include_meridian:
        answer["meridian_correlation"] = [
            {
                "meridian": MERIDIANS[(digest[4] + i) % 12],
                "correlation": round(0.4 + (digest[5 + i] % 50) / 100, 2),
            }
            for i in range(3)
        ]
    return answer


def vital_problem(vitals: object) -> tuple[str, str] | None:
    """(field, reason) if ``vital_signs`` is unusable."""
    if not isinstance(vitals, dict):
        return "vital_signs", "required object"
    for name in ("heart_rate", "blood_oxygen", "temperature"):
        value = vitals.get(name)
        if value is not None and not isinstance(value, int | float):
            return f"vital_signs.{name}", "must be a number or null"
    pressure = vitals.get("blood_pressure")
    if pressure is not None and not (
        isinstance(pressure, dict)
        and all(isinstance(pressure.get(k), int | float) for k in ("systolic", "diastolic"))
    ):
        return "vital_signs.blood_pressure", "needs systolic and diastolic numbers"
    if vitals.get("heart_rate") is None and vitals.get("blood_oxygen") is None:
        return "vital_signs", "needs at least heart_rate or blood_oxygen"
    return None


def diagnosis_answer(body: dict[str, Any], request: web.Request) -> dict[str, Any]:
    """A 12-meridian reading of the vital signs (higher rate: more 'excess'; low SpO2: lung)."""
    vitals = body["vital_signs"]
    hr = float(vitals.get("heart_rate") or 70.0)
    spo2 = float(vitals.get("blood_oxygen") or 97.0)
    temp = float(vitals.get("temperature") or 36.6)
    scores = {}
    for i, meridian in enumerate(MERIDIANS):
        score = 50.0 + (hr - 70.0) * (0.8 if meridian in ("heart", "pericardium") else 0.2)
        score += (97.0 - spo2) * (4.0 if meridian == "lung" else 0.5)
        score += (temp - 36.6) * (6.0 if meridian in ("stomach", "large_intestine") else 1.0)
        scores[meridian] = round(max(0.0, min(100.0, score + (i % 3))), 1)

    def status(s: float) -> str:
        return "excess" if s > 65 else "deficient" if s < 35 else "balanced"

    worst = max(scores, key=lambda m: abs(scores[m] - 50.0))
    answer: dict[str, Any] = {
        "success": True,
        "diagnosis_id": "dx_"
        + uuid.uuid5(uuid.NAMESPACE_URL, repr(sorted(vitals.items()))).hex[:16],
        "overall_assessment": {
            "pattern": f"{worst}_{status(scores[worst])}"
            if status(scores[worst]) != "balanced"
            else "balanced",
            "confidence": 0.72,
            "summary": f"heart rate {hr:.0f} bpm, SpO2 {spo2:.0f} %, temperature {temp:.1f} C",
        },
        "meridian_status": [
            {"meridian": m, "score": s, "status": status(s)} for m, s in scores.items()
        ],
        "network_analysis": {
            "central_meridian": worst,
            "links": [[worst, MERIDIANS[(MERIDIANS.index(worst) + 1) % 12]]],
        },
        "treatments": None,
        "prognosis": None,
        "tongue_analysis_id": body.get("tongue_analysis_id"),
    }
    if body.get("include_treatment"):
        answer["treatments"] = {
            "acupoints": [f"{worst}_3", f"{worst}_6"],
            "lifestyle": ["regular sleep"],
        }
    if body.get("include_prognosis"):
        answer["prognosis"] = {"outlook": "favourable", "review_in_days": 14}
    return answer
