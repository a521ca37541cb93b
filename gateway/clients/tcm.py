"""Client of the TCM 12-meridian API (API.md part B): auth and health data upload.

Every failure becomes one of the typed errors of ``gateway.errors`` per API.md's table, carrying
the server's code, ``request_id`` and details; tokens and keys never appear in them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import aiohttp

from gateway.clients.transport import Transport
from gateway.errors import AuthError, PermanentSinkError, RetryableSinkError, SinkError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

    from gateway.clients.limiter import ClientRateLimiter
    from gateway.config import TcmConfig

log = logging.getLogger(__name__)

MAX_IMAGE_BYTES = 10 * 1024 * 1024  # API.md: tongue images up to 10 MB


def image_kind(data: bytes) -> str | None:
    """``jpg`` or ``png`` by the file's signature (the API takes no other), else None."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    return None


_REFRESH_MARGIN_S = 300.0  # renew a token this long before it expires
# API.md: what can succeed later is retried, the rest is dead-lettered by the caller.
_PERMANENT_STATUSES = frozenset({400, 403, 404, 409, 413, 422})


@dataclass(frozen=True, slots=True)
class UploadResult:
    """The server's answer to one health upload."""

    accepted: int
    duplicates: int
    upload_id: str
    request_id: str | None


class TcmClient:
    """Logs in when configured with an account (else sends the static API key) and uploads."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        config: TcmConfig,
        limiter: ClientRateLimiter | None = None,
        *,
        token_cache: Path | None = None,
    ) -> None:
        self._session = session
        self._config = config
        self._limiter = limiter
        self._access_token: str | None = None
        self._refresh_token: str | None = None
        self._expires_at = 0.0
        self._ttl_s = 3600.0
        self._token_cache = token_cache
        self._login_lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"TcmClient(base_url={self._config.base_url!r})"

    def sustainable_interval_s(self) -> float:
        """The gap between requests at which the plan's every quota lasts (0: no limiter)."""
        return self._limiter.sustainable_interval_s() if self._limiter else 0.0

    def quota(self) -> tuple[int, int, float] | None:
        """(limit, remaining, reset epoch s) of the plan's tightest window (None: no limiter)."""
        return self._limiter.remaining() if self._limiter else None

    async def upload_health(
        self,
        device_id: str,
        records: Sequence[dict[str, object]],
        *,
        data_type: Literal["realtime", "batch"],
        sync_type: Literal["incremental", "full"],
    ) -> UploadResult:
        """``POST /health/upload``.

        Raises:
            RetryableSinkError: 429, 5xx, timeouts and network errors.
            PermanentSinkError: The server refused the payload (400, 403, 422, ...).
            AuthError: Credentials refused after one fresh login.
        """
        body = {
            "data_type": data_type,
            "sync_type": sync_type,
            "device_id": device_id,
            "records": list(records),
        }
        data, request_id = await self._authorised_post(self._config.upload_path, body)
        if data.get("success") is not True:
            msg = "upload answered without success: true"
            raise PermanentSinkError(msg, request_id=request_id)
        return UploadResult(
            accepted=int(data.get("accepted", 0)),
            duplicates=int(data.get("duplicates", 0)),
            upload_id=str(data.get("upload_id", "")),
            request_id=request_id,
        )

    async def analyze_tongue(
        self, image: Path, *, analysis_type: str = "standard", include_meridian: bool = True
    ) -> dict[str, Any]:
        """``POST /tongue/analyze``; the image is checked here first (JPG or PNG, <= 10 MB).

        Raises:
            PermanentSinkError: The image would be refused (nothing was sent), or was.
        """
        data = await asyncio.to_thread(image.read_bytes)
        if len(data) > MAX_IMAGE_BYTES:
            msg = f"{image.name}: {len(data)} bytes is over the API's 10 MB"
            raise PermanentSinkError(msg, code="IMAGE_TOO_LARGE")
        if image_kind(data) is None:
            msg = f"{image.name}: the API takes JPG or PNG only"
            raise PermanentSinkError(msg, code="IMAGE_FORMAT")
        body = {
            "image_type": "tongue",
            "analysis_type": analysis_type,
            "include_meridian": include_meridian,
        }
        answer, _ = await self._authorised_post(
            self._config.tongue_path, body, image=(image.name, data)
        )
        return answer

    async def diagnose(
        self,
        vital_signs: Mapping[str, object],
        symptoms: list[str],
        *,
        tongue_analysis_id: str | None = None,
        include_treatment: bool = True,
        include_prognosis: bool = True,
    ) -> dict[str, Any]:
        """``POST /meridian/diagnose``."""
        body: dict[str, object] = {
            "vital_signs": dict(vital_signs),
            "symptoms": symptoms,
            "include_treatment": include_treatment,
            "include_prognosis": include_prognosis,
        }
        if tongue_analysis_id is not None:
            body["tongue_analysis_id"] = tongue_analysis_id
        answer, _ = await self._authorised_post(self._config.diagnose_path, body)
        return answer

    async def _authorised_post(
        self, path: str, body: Mapping[str, object], *, image: tuple[str, bytes] | None = None
    ) -> tuple[dict[str, Any], str | None]:
        token = await self._token()
        try:
            return await self._post(path, body, token, image=image)
        except AuthError:
            if self._config.api_key is not None:
                raise
        # API.md: on INVALID_TOKEN, log in again once and retry the same request once.
        self._access_token = None
        token = await self._token(stale=token)
        return await self._post(path, body, token, image=image)

    async def _token(self, stale: str | None = None) -> str:
        if self._config.api_key is not None:
            return self._config.api_key.get_secret_value()
        async with self._login_lock:
            if self._access_token is None:
                self._load_cached_token()
            margin_s = min(_REFRESH_MARGIN_S, 0.1 * self._ttl_s)
            fresh = self._expires_at - time.time() > margin_s
            if self._access_token is None or self._access_token == stale or not fresh:
                await self._renew()
            assert self._access_token is not None
            return self._access_token

    async def _renew(self) -> None:
        """Refresh when a refresh token is at hand (and accepted), else log in."""
        cfg = self._config
        if self._refresh_token is not None:
            try:
                data, _ = await self._post(
                    cfg.refresh_path, {"refresh_token": self._refresh_token}, None
                )
                self._adopt(data)
                log.info("access token refreshed")
                return
            except AuthError:
                self._refresh_token = None  # expired or revoked: log in instead
        if cfg.email is None or cfg.password is None:
            msg = "no account configured to log in with"
            raise AuthError(msg)
        body = {"email": cfg.email, "password": cfg.password.get_secret_value()}
        data, _ = await self._post(cfg.login_path, body, None)
        self._adopt(data)
        log.info("logged in to %s", cfg.base_url)

    def _adopt(self, data: Mapping[str, object]) -> None:
        token = data.get("access_token")
        if not isinstance(token, str) or not token:
            msg = "the server answered without an access_token"
            raise AuthError(msg)
        expires_in = data.get("expires_in")
        ttl_s = float(expires_in) if isinstance(expires_in, int | float) else 3600.0
        refresh = data.get("refresh_token")
        self._access_token = token
        self._refresh_token = refresh if isinstance(refresh, str) else None
        self._expires_at = time.time() + ttl_s
        self._ttl_s = ttl_s
        self._save_cached_token()

    def _load_cached_token(self) -> None:
        path = self._token_cache
        if path is None or not path.exists():
            return
        try:
            cached = json.loads(path.read_text())
            if (
                cached.get("base_url") != self._config.base_url
                or cached.get("email") != self._config.email
            ):
                return  # another account or server
            self._access_token = str(cached["access_token"])
            refresh = cached.get("refresh_token")
            self._refresh_token = str(refresh) if refresh else None
            self._expires_at = float(cached["expires_at"])
            self._ttl_s = float(cached.get("ttl_s", self._ttl_s))
        except (OSError, ValueError, KeyError, TypeError):
            log.warning("token cache %s unreadable: logging in again", path)

    def _save_cached_token(self) -> None:
        path = self._token_cache
        if path is None:
            return
        cached = {
            "base_url": self._config.base_url,
            "email": self._config.email,
            "access_token": self._access_token,
            "refresh_token": self._refresh_token,
            "expires_at": self._expires_at,
            "ttl_s": self._ttl_s,
        }
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # created 0600: the file holds a credential
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(cached, f)
            path.chmod(0o600)
        except OSError as exc:
            log.warning("token cache %s not written: %s", path, exc.strerror)

    async def _post(
        self,
        path: str,
        body: Mapping[str, object],
        token: str | None,
        *,
        image: tuple[str, bytes] | None = None,
    ) -> tuple[dict[str, Any], str | None]:
        """One request: JSON ``body``, or a multipart form of ``body`` plus ``image``."""
        url = self._config.base_url.rstrip("/") + path
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        cfg = self._config
        transport = Transport(cfg.verify_tls, cfg.ca_bundle, cfg.connect_timeout_s, cfg.timeout_s)
        if self._limiter is not None:
            await self._limiter.acquire()
        try:
            payload: dict[str, Any] = {"json": body}
            if image is not None:
                form = aiohttp.FormData()
                for name, value in body.items():
                    form.add_field(
                        name, str(value).lower() if isinstance(value, bool) else str(value)
                    )
                form.add_field("image", image[1], filename=image[0])
                payload = {"data": form}
            async with self._session.post(
                url, headers=headers, timeout=transport.timeout(), ssl=transport.ssl(), **payload
            ) as response:
                status = response.status
                retry_after = _retry_after_s(response.headers, use_reset=response.status == 429)
                if self._limiter is not None:
                    self._limiter.observe(response.headers)
                try:
                    data = await response.json(content_type=None)
                except ValueError:
                    data = None
        except (aiohttp.ClientError, TimeoutError) as exc:
            msg = f"POST {path}: {type(exc).__name__}"
            raise RetryableSinkError(msg) from None
        if not isinstance(data, dict):
            data = {}
        if 200 <= status < 300:
            return data, _request_id(data)
        raise _error(path, status, data, retry_after)


def _error(path: str, status: int, data: dict[str, Any], retry_after_s: float | None) -> SinkError:
    error = data.get("error") if isinstance(data.get("error"), dict) else {}
    assert isinstance(error, dict)
    code = error.get("code") if isinstance(error.get("code"), str) else None
    request_id = error.get("request_id") if isinstance(error.get("request_id"), str) else None
    details = error.get("details") if isinstance(error.get("details"), dict) else None
    message = f"POST {path}: HTTP {status} {code or ''}".rstrip()
    if status == 401:
        return AuthError(message, code=code, status=status, request_id=request_id)
    if status == 429 or status >= 500:
        return RetryableSinkError(
            message, retry_after_s=retry_after_s, code=code, status=status, request_id=request_id
        )
    if status in _PERMANENT_STATUSES or 400 <= status < 500:
        return PermanentSinkError(
            message, code=code, status=status, request_id=request_id, details=details
        )
    return RetryableSinkError(message, code=code, status=status, request_id=request_id)


def _request_id(data: dict[str, Any]) -> str | None:
    rid = data.get("request_id")
    return rid if isinstance(rid, str) else None


def _retry_after_s(headers: Mapping[str, str], *, use_reset: bool) -> float | None:
    """``Retry-After`` seconds, else (on 429) the wait until ``X-RateLimit-Reset`` (epoch s)."""
    names = (
        (("Retry-After", True), ("X-RateLimit-Reset", False))
        if use_reset
        else (("Retry-After", True),)
    )
    for name, relative in names:
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value)
        except ValueError:
            continue
        return max(0.0, seconds if relative else seconds - time.time())
    return None
