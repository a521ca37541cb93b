"""Client of the HeartVoice lab API (API.md A): PPG -> ECG, single lead and 3 leads -> 12 leads.

Every answer is an envelope ``{"errorCode", "msg", "data"}``; any code but "0" is a failure
even with HTTP 200 (kept as ``PermanentSinkError(code, msg)``), unless the HTTP status says the
call may succeed later (429, 5xx: ``RetryableSinkError``). The sample rate goes under both
spellings the seed uses (its tables and its examples disagree).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import TYPE_CHECKING, Any

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.clients.transport import Transport
from gateway.errors import AuthError, PermanentSinkError, RetryableSinkError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from gateway.config import HeartVoiceConfig


class _Request(BaseModel):
    model_config = ConfigDict(populate_by_name=True, frozen=True)


class PpgFlowEcgRequest(_Request):
    """``ppgFlowEcg``: the table says ``ppgSampleRate``, the example ``ecgSampleRate``: both."""

    ppg_data: list[float] = Field(alias="ppgData")
    ppg_sample_rate: float = Field(alias="ppgSampleRate")
    ecg_sample_rate: float = Field(alias="ecgSampleRate")


class McmaRequest(_Request):
    """``mcma``: the table says ``ecgSamplerate``, the example ``ecgSampleRate``: both."""

    ecg_data: list[float] = Field(alias="ecgData")
    ecg_sample_rate: float = Field(alias="ecgSampleRate")
    ecg_samplerate: float = Field(alias="ecgSamplerate")
    original: bool = True


class Lead3Lead12Request(_Request):
    """``lead3Lead12``: three leads (I, II, III) of equal length."""

    ecg_data: list[list[float]] = Field(alias="ecgData")
    ecg_sample_rate: float = Field(alias="ecgSampleRate")
    ecg_samplerate: float = Field(alias="ecgSamplerate")


class DiffuSetsRequest(_Request):
    """``diffuSets``: diagnoses joined by ``|``, patient age, sex and heart rate."""

    text: str
    age: int
    sex: str
    hr: int
    batch: int = 1


class Envelope(BaseModel):
    """Every HeartVoice answer."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    error_code: str = Field(alias="errorCode")
    msg: str = ""
    data: Any = None


class Leads(BaseModel):
    """ECG leads as the API returns them: one list of floats per lead."""

    leads: list[list[float]]


class HeartVoiceClient:
    """Typed calls to the lab API with its API key."""

    def __init__(self, session: aiohttp.ClientSession, config: HeartVoiceConfig) -> None:
        self._session = session
        self._config = config

    def __repr__(self) -> str:
        return f"HeartVoiceClient(base_url={self._config.base_url!r})"

    async def ppg_to_ecg(self, ppg: Sequence[float], rate_hz: float) -> list[float]:
        """One ECG lead at ``rate_hz`` (API.md: the output rate equals the input rate)."""
        body = PpgFlowEcgRequest(
            ppg_data=list(ppg), ppg_sample_rate=rate_hz, ecg_sample_rate=rate_hz
        )
        (lead,) = await self._leads(self._config.ppg_flow_ecg_path, body, expected=1)
        return lead

    async def twelve_leads(
        self, ecg: Sequence[float], rate_hz: float, *, original: bool = True
    ) -> list[list[float]]:
        """``mcma``: 12 leads (I, II, III, aVR, aVL, aVF, V1-V6) from one lead."""
        body = McmaRequest(
            ecg_data=list(ecg), ecg_sample_rate=rate_hz, ecg_samplerate=rate_hz, original=original
        )
        return await self._leads(self._config.mcma_path, body, expected=12)

    async def twelve_from_three(
        self, ecg: Sequence[Sequence[float]], rate_hz: float
    ) -> list[list[float]]:
        """``lead3Lead12``: 12 leads from three."""
        body = Lead3Lead12Request(
            ecg_data=[list(lead) for lead in ecg], ecg_sample_rate=rate_hz, ecg_samplerate=rate_hz
        )
        return await self._leads(self._config.lead3_lead12_path, body, expected=12)

    async def diffusets(
        self, diagnoses: Sequence[str], age: int, sex: str, heart_rate_bpm: int, batch: int = 1
    ) -> list[bytes]:
        """``diffuSets``: 12-lead ECG images (PNG bytes) generated for a clinical description."""
        body = DiffuSetsRequest(
            text="|".join(diagnoses), age=age, sex=sex, hr=heart_rate_bpm, batch=batch
        )
        data = await self._post(self._config.diffusets_path, body.model_dump())
        try:
            encoded = json.loads(data["textImg"])
            images = [base64.b64decode(item, validate=True) for item in encoded]
        except (TypeError, KeyError, ValueError, binascii.Error):
            msg = f"POST {self._config.diffusets_path}: textImg is not a JSON list of base64 images"
            raise PermanentSinkError(msg, code="bad_response") from None
        return images

    async def _leads(self, path: str, body: _Request, *, expected: int) -> list[list[float]]:
        data = await self._post(path, body.model_dump(by_alias=True))
        try:
            leads = Leads(leads=data).leads
        except ValidationError:
            msg = f"POST {path}: data is not a list of leads"
            raise PermanentSinkError(msg, code="bad_response") from None
        if len(leads) != expected:
            msg = f"POST {path}: {len(leads)} leads, expected {expected}"
            raise PermanentSinkError(msg, code="bad_response")
        return leads

    async def _post(self, path: str, body: dict[str, object]) -> Any:
        cfg = self._config
        key = cfg.api_key.get_secret_value() if cfg.api_key else ""
        url = cfg.base_url.rstrip("/") + path
        transport = Transport(cfg.verify_tls, cfg.ca_bundle, cfg.connect_timeout_s, cfg.timeout_s)
        try:
            async with self._session.post(
                url,
                json=body,
                headers={"Authorization": f"Bearer {key}"},
                timeout=transport.timeout(),
                ssl=transport.ssl(),
            ) as response:
                status = response.status
                try:
                    raw = await response.json(content_type=None)
                except ValueError:
                    raw = None
        except (aiohttp.ClientError, TimeoutError) as exc:
            msg = f"POST {path}: {type(exc).__name__}"
            raise RetryableSinkError(msg) from None
        try:
            envelope = Envelope.model_validate(raw)
        except ValidationError:
            envelope = Envelope(error_code=str(status), msg="no envelope in the answer")
        if status == 429 or status >= 500:
            msg = f"POST {path}: HTTP {status} {envelope.msg}"
            raise RetryableSinkError(msg, code=envelope.error_code, status=status)
        if status == 401:
            msg = f"POST {path}: API key refused"
            raise AuthError(msg, code=envelope.error_code, status=status)
        if status >= 300 or envelope.error_code != "0":
            msg = f"POST {path}: errorCode {envelope.error_code}: {envelope.msg}"
            raise PermanentSinkError(msg, code=envelope.error_code, status=status)
        return envelope.data
