"""The emulator's aiohttp application: TCM auth and health upload, with the error envelope.

TCM lives under ``/api/v1`` as on the real service. ``/_emulator/...`` are the emulator's own
routes: what it received (per device), and fault injection for tests.

Size: the TCM API's routes with their error envelope and the emulator's own routes, one
handler each; HeartVoice's routes are in ``heartvoice``.
"""

from __future__ import annotations

import math
import secrets
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from aiohttp import BodyPartReader, web

from gateway.clients.tcm import MAX_IMAGE_BYTES, image_kind
from gateway.emulator import heartvoice, tcm_diagnosis
from gateway.emulator.faults import Faults, deliver
from gateway.rate_limits import PLANS, Windows

if TYPE_CHECKING:
    from aiohttp.typedefs import Handler

TCM_PREFIX: Final = "/api/v1"
HEARTVOICE_PREFIX: Final = heartvoice.PREFIX
_DATA_TYPES: Final = frozenset({"realtime", "batch"})
_SYNC_TYPES: Final = frozenset({"full", "incremental"})
_NULLABLE_NUMBERS: Final = (
    "heart_rate",
    "blood_oxygen",
    "temperature",
    "stress_level",
    "sleep_hours",
    "steps",
    "calories",
)

# API.md B's error table: the code each injected status answers with.
_FAULT_CODES: Final = {
    400: "INVALID_PARAMETER",
    401: "INVALID_TOKEN",
    403: "INSUFFICIENT_PERMISSIONS",
    422: "IMAGE_PROCESSING_ERROR",
    429: "RATE_LIMIT_EXCEEDED",
    500: "DIAGNOSIS_MODEL_ERROR",
    503: "SERVICE_UNAVAILABLE",
}


@dataclass(frozen=True, slots=True)
class EmulatorConfig:
    """Credentials the emulator accepts, and how long its tokens live."""

    email: str = "demo@example.com"
    password: str = "demo-password"  # noqa: S105 - the emulator's published demo account
    tcm_api_key: str = "tcm-demo-key"
    heartvoice_api_key: str = "heartvoice-demo-key"
    plan: str = "free"
    token_ttl_s: float = 86_400.0
    window_scale: float = 1.0  # shrinks the plan's windows (tests run a "day" in seconds)
    faults: dict[str, Any] = field(default_factory=dict)  # initial knobs, as POST /_emulator/faults


@dataclass(slots=True)
class EmulatorState:
    """Everything the emulator received and issued; tests read it through ``/_emulator``."""

    records: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    seen: set[tuple[str, str]] = field(default_factory=set)
    duplicates: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    uploads: int = 0
    # records received per "<data_type>/<sync_type>", duplicates included
    records_by_type: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    requests: int = 0
    tokens: dict[str, float] = field(default_factory=dict)
    refresh_tokens: set[str] = field(default_factory=set)
    faults: Faults = field(default_factory=Faults)
    limited: int = 0  # requests answered 429 by the plan
    heartvoice_requests: int = 0
    logins: int = 0
    tongue_analyses: set[str] = field(default_factory=set)
    refreshes: int = 0
    windows: Windows | None = None


STATE_KEY: Final = web.AppKey("state", EmulatorState)
CONFIG_KEY: Final = web.AppKey("config", EmulatorConfig)


def emulator_app(config: EmulatorConfig | None = None) -> web.Application:
    """Build the emulator; serve it with ``web.run_app`` or ``aiohttp.test_utils.TestServer``."""
    # 10 MB images plus the multipart envelope
    app = web.Application(middlewares=[_count_and_inject_faults], client_max_size=12 * 1024 * 1024)
    app[CONFIG_KEY] = config = config or EmulatorConfig()
    app[STATE_KEY] = state = EmulatorState(windows=Windows(PLANS[config.plan], config.window_scale))
    problem = state.faults.update(dict(config.faults))
    if problem is not None:
        raise ValueError(problem)
    app.router.add_post(f"{TCM_PREFIX}/auth/login", _login)
    app.router.add_post(f"{TCM_PREFIX}/auth/refresh", _refresh)
    app.router.add_post(f"{TCM_PREFIX}/health/upload", _health_upload)
    app.router.add_post(f"{TCM_PREFIX}/tongue/analyze", _tongue_analyze)
    app.router.add_post(f"{TCM_PREFIX}/meridian/diagnose", _meridian_diagnose)
    for name, handler in (
        ("ppgFlowEcg", heartvoice.ppg_flow_ecg),
        ("mcma", heartvoice.mcma),
        ("lead3Lead12", heartvoice.lead3_lead12),
        ("diffuSets", heartvoice.diffusets),
    ):
        app.router.add_post(f"{heartvoice.PREFIX}/{name}", _heartvoice_auth(handler))
    app.router.add_get("/_emulator/received", _received)
    app.router.add_post("/_emulator/faults", _faults)
    app.router.add_get("/_emulator/faults", _faults)
    return app


def _heartvoice_auth(handler: Handler) -> Handler:
    async def guarded(request: web.Request) -> web.StreamResponse:
        request.app[STATE_KEY].heartvoice_requests += 1
        refused = heartvoice.authorised(request, request.app[CONFIG_KEY].heartvoice_api_key)
        return refused if refused is not None else await handler(request)

    return guarded


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    field_name: str | None = None,
    reason: str | None = None,
) -> web.Response:
    """The error envelope of API.md B for every non-2xx answer."""
    request_id = _request_id()
    body = {
        "success": False,
        "error": {
            "code": code,
            "message": message,
            "details": {"field": field_name, "reason": reason},
            "timestamp": _now_iso(),
            "request_id": request_id,
        },
    }
    return web.json_response(body, status=status, headers={"X-Request-Id": request_id})


async def _heartvoice_with_faults(
    request: web.Request, faults: Faults, handler: Handler
) -> web.StreamResponse:
    """HeartVoice has no documented quota: only the injected faults apply."""
    if (status := faults.status_now()) is not None:
        faults.injected += 1
        return heartvoice.answer(None, code=str(status), msg="injected fault", status=status)
    return await deliver(request, faults, handler)


@web.middleware
async def _count_and_inject_faults(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith("/_emulator"):
        return await handler(request)
    state = request.app[STATE_KEY]
    faults = state.faults
    if faults.dropping():
        faults.injected += 1
        if request.transport is not None:
            request.transport.close()
        return web.Response(status=503)  # never reaches the client: the connection is gone
    if request.path.startswith(HEARTVOICE_PREFIX):
        return await _heartvoice_with_faults(request, faults, handler)
    state.requests += 1
    assert state.windows is not None
    now = time.time()
    if (wait_s := state.windows.wait_s(now)) > 0:
        state.limited += 1
        response = error_response(429, "RATE_LIMIT_EXCEEDED", "plan quota exhausted")
        response.headers["Retry-After"] = str(math.ceil(wait_s))
        _rate_headers(response, state.windows, now)
        return response
    state.windows.take(now)
    if (status := faults.status_now()) is not None:
        faults.injected += 1
        response = error_response(
            status, _FAULT_CODES.get(status, "SERVICE_UNAVAILABLE"), "injected fault"
        )
        if status == 429:
            response.headers["Retry-After"] = "1"
        _rate_headers(response, state.windows, now)
        return response
    answer = await deliver(request, faults, handler)
    if not answer.prepared:
        _rate_headers(answer, state.windows, now)
    return answer


def _rate_headers(response: web.StreamResponse, windows: Windows, now: float) -> None:
    limit, remaining, reset_s = windows.tightest(now)
    response.headers["X-RateLimit-Limit"] = str(limit)
    response.headers["X-RateLimit-Remaining"] = str(remaining)
    response.headers["X-RateLimit-Reset"] = str(math.ceil(reset_s))


async def _json_body(request: web.Request) -> dict[str, Any] | web.Response:
    try:
        body = await request.json()
    except ValueError:
        return error_response(400, "INVALID_PARAMETER", "body is not JSON", reason="not JSON")
    if not isinstance(body, dict):
        return error_response(400, "INVALID_PARAMETER", "body must be an object")
    return body


def _issue_tokens(app: web.Application, email: str) -> web.Response:
    config, state = app[CONFIG_KEY], app[STATE_KEY]
    access = "at_" + secrets.token_urlsafe(24)
    refresh = "rt_" + secrets.token_urlsafe(24)
    state.tokens[access] = time.time() + config.token_ttl_s
    state.refresh_tokens.add(refresh)
    return web.json_response(
        {
            "success": True,
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": int(config.token_ttl_s),
            "refresh_token": refresh,
            "user": {"id": "user_demo", "email": email, "name": "Demo User", "plan": config.plan},
        }
    )


async def _login(request: web.Request) -> web.Response:
    body = await _json_body(request)
    if isinstance(body, web.Response):
        return body
    config = request.app[CONFIG_KEY]
    for name in ("email", "password"):
        if not isinstance(body.get(name), str):
            return error_response(
                400, "INVALID_PARAMETER", f"{name} is required", field_name=name, reason="required"
            )
    if body["email"] != config.email or body["password"] != config.password:
        return error_response(401, "INVALID_TOKEN", "wrong email or password")
    request.app[STATE_KEY].logins += 1
    return _issue_tokens(request.app, body["email"])


async def _refresh(request: web.Request) -> web.Response:
    body = await _json_body(request)
    if isinstance(body, web.Response):
        return body
    state = request.app[STATE_KEY]
    token = body.get("refresh_token")
    if not isinstance(token, str) or token not in state.refresh_tokens:
        return error_response(
            401, "INVALID_TOKEN", "unknown refresh token", field_name="refresh_token"
        )
    state.refresh_tokens.discard(token)
    state.refreshes += 1
    return _issue_tokens(request.app, request.app[CONFIG_KEY].email)


def _authorised(request: web.Request) -> web.Response | None:
    header = request.headers.get("Authorization", "")
    token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
    if token and token == request.app[CONFIG_KEY].tcm_api_key:
        return None
    expiry = request.app[STATE_KEY].tokens.get(token)
    if expiry is None or expiry < time.time():
        return error_response(401, "INVALID_TOKEN", "missing, unknown or expired token")
    return None


def _invalid(field_name: str, reason: str) -> web.Response:
    """400 INVALID_PARAMETER naming the field, as API.md's envelope has it."""
    return error_response(
        400, "INVALID_PARAMETER", f"{field_name}: {reason}", field_name=field_name, reason=reason
    )


async def _authorised_json(request: web.Request) -> dict[str, Any] | web.Response:
    """The JSON body of an authorised request, or the error answer to send instead."""
    refused = _authorised(request)
    if refused is not None:
        return refused
    return await _json_body(request)


async def _health_upload(request: web.Request) -> web.Response:
    body = await _authorised_json(request)
    if isinstance(body, web.Response):
        return body
    problem = _upload_problem(body)
    if problem is not None:
        return _invalid(*problem)
    state = request.app[STATE_KEY]
    device_id: str = body["device_id"]
    accepted = duplicates = 0
    for record in body["records"]:
        key = (device_id, record["timestamp"])
        if key in state.seen:
            duplicates += 1
            continue
        state.seen.add(key)
        state.records[device_id].append(record)
        accepted += 1
    state.duplicates[device_id] += duplicates
    state.uploads += 1
    state.records_by_type[f"{body['data_type']}/{body.get('sync_type', 'incremental')}"] += len(
        body["records"]
    )
    return web.json_response(
        {
            "success": True,
            "accepted": accepted,
            "duplicates": duplicates,
            "upload_id": "up_" + uuid.uuid4().hex[:16],
            "request_id": _request_id(),
        }
    )


def _upload_problem(body: dict[str, Any]) -> tuple[str, str] | None:  # noqa: PLR0911 - one check a field
    if body.get("data_type") not in _DATA_TYPES:
        return "data_type", "must be realtime or batch"
    if body.get("sync_type", "incremental") not in _SYNC_TYPES:
        return "sync_type", "must be full or incremental"
    if not isinstance(body.get("device_id"), str) or not body["device_id"]:
        return "device_id", "required"
    records = body.get("records")
    if not isinstance(records, list) or not records:
        return "records", "must be a non-empty list"
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            return f"records[{i}]", "must be an object"
        timestamp = record.get("timestamp")
        if not isinstance(timestamp, str) or not timestamp.endswith("Z"):
            return f"records[{i}].timestamp", "ISO 8601 UTC ending in Z required"
        try:
            datetime.fromisoformat(timestamp)
        except ValueError:
            return f"records[{i}].timestamp", "not ISO 8601"
        for name in _NULLABLE_NUMBERS:
            value = record.get(name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float)
            ):
                return f"records[{i}].{name}", "must be a number or null"
    return None


async def _tongue_analyze(request: web.Request) -> web.Response:  # noqa: PLR0911 - one check a field
    refused = _authorised(request)
    if refused is not None:
        return refused
    if not request.content_type.startswith("multipart/"):
        return error_response(
            400, "INVALID_PARAMETER", "multipart/form-data expected", field_name="image"
        )
    fields: dict[str, bytes] = {}
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if isinstance(part, BodyPartReader) and part.name:
            fields[part.name] = await part.read(decode=False)
    image = fields.get("image")
    if not image:
        return error_response(
            400, "INVALID_PARAMETER", "image is required", field_name="image", reason="required"
        )
    if len(image) > MAX_IMAGE_BYTES:
        return error_response(
            400,
            "INVALID_PARAMETER",
            "image larger than 10 MB",
            field_name="image",
            reason="too large",
        )
    if image_kind(image) is None:
        return error_response(
            422, "IMAGE_PROCESSING_ERROR", "image is neither JPG nor PNG", field_name="image"
        )
    analysis_type = fields.get("analysis_type", b"standard").decode(errors="replace")
    if analysis_type not in ("quick", "standard", "detailed"):
        return error_response(
            400,
            "INVALID_PARAMETER",
            "analysis_type: quick, standard or detailed",
            field_name="analysis_type",
        )
    include = fields.get("include_meridian", b"true").decode(errors="replace").lower() in (
        "true",
        "1",
        "yes",
    )
    answer = tcm_diagnosis.tongue_answer(image, analysis_type, include)
    request.app[STATE_KEY].tongue_analyses.add(answer["analysis_id"])
    return web.json_response(answer)


async def _meridian_diagnose(request: web.Request) -> web.Response:
    body = await _authorised_json(request)
    if isinstance(body, web.Response):
        return body
    problem = tcm_diagnosis.vital_problem(body.get("vital_signs"))
    symptoms = body.get("symptoms")
    if problem is None and not (
        (isinstance(symptoms, str) and symptoms)
        or (isinstance(symptoms, list) and all(isinstance(s, str) for s in symptoms))
    ):
        problem = ("symptoms", "required: text or a list of texts")
    tongue = body.get("tongue_analysis_id")
    if (
        problem is None
        and tongue is not None
        and tongue not in request.app[STATE_KEY].tongue_analyses
    ):
        problem = ("tongue_analysis_id", "unknown analysis")
    if problem is not None:
        return _invalid(*problem)
    return web.json_response(tcm_diagnosis.diagnosis_answer(body, request))


async def _received(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    return web.json_response(
        {
            "uploads": state.uploads,
            "requests": state.requests,
            "devices": {
                device: {"records": records, "duplicates": state.duplicates[device]}
                for device, records in state.records.items()
            },
        }
    )


async def _faults(request: web.Request) -> web.Response:
    """``GET``: the fault knobs; ``POST``: change some (see ``gateway.emulator.faults``)."""
    faults = request.app[STATE_KEY].faults
    if request.method == "POST":
        body = await _json_body(request)
        if isinstance(body, web.Response):
            return body
        problem = faults.update(body)
        if problem is not None:
            return error_response(400, "INVALID_PARAMETER", problem)
    return web.json_response({"success": True, "faults": faults.public()})


def _request_id() -> str:
    return "req_" + uuid.uuid4().hex[:16]


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
