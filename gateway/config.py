"""The configuration tree: ``config.yaml``, overridden by ``WGW_*`` variables, validated at start.

Every path and URL of the cloud APIs (``../shared/API.md``) is a field with the documented value
as default, so a deployment can follow a server that differs without a release.

Size: one small pydantic model per config section, kept in one module so that the tree reads
top to bottom as ``config.yaml`` does.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Annotated, Literal, Self

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    FilePath,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from drivers.movesense.resources import parse_path
from gateway import lsl_library
from gateway.errors import ConfigError

MacAddress = Annotated[str, Field(pattern=r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$")]
TopicSafeId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
HttpUrl = Annotated[str, Field(pattern=r"^https?://[^\s/]+(/\S*)?$")]
UrlPath = Annotated[str, Field(pattern=r"^/\S*$")]
PositiveSeconds = Annotated[float, Field(gt=0, le=86_400)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SimFaultConfig(_Section):
    """A fault a simulated device plays on its own clock (simulated seconds from start)."""

    kind: Literal["link_drop", "out_of_range", "malformed", "refuse_connects"]
    at_s: float = Field(ge=0.0)
    every_s: PositiveSeconds | None = None
    duration_s: float = Field(0.0, ge=0.0)
    rate: float = Field(0.2, ge=0.0, le=1.0, description="malformed: share of packets")
    count: int = Field(3, ge=1, description="refuse_connects: how many")


class SimDeviceConfig(_Section):
    """One simulated device (``ble.backend: sim``); unset fields take the model's defaults."""

    model: Literal[
        "watch", "strap", "armband", "patch", "cuff", "oximeter", "pinetime", "movesense"
    ] = "watch"
    address: MacAddress
    name: str | None = Field(None, min_length=1, max_length=29)
    seed: int = 1
    heart_rate_interval_ms: int | None = Field(None, ge=5, le=60_000)
    blood_pressure_interval_s: float | None = Field(
        None, ge=1.0, le=86_400.0, description="watch 300 s, cuff 900 s"
    )
    spot_check_interval_s: float | None = Field(
        None, ge=1.0, le=86_400.0, description="oximeter: 600 s"
    )
    pmd_rate_hz: int | None = Field(None, ge=1, le=1000, description="e.g. 55 for an armband")
    malformed_rate: float = Field(0.0, ge=0.0, le=1.0)
    battery_pct: float = Field(90.0, ge=0.0, le=100.0)
    clock_offset_s: float = 0.0
    start_delay_s: float = Field(
        0.0, ge=0.0, le=3600.0, description="switched on this long after the simulation starts"
    )
    faults: tuple[SimFaultConfig, ...] = ()
    security: Literal["none", "just_works", "passkey"] = Field(
        "none", description="an encrypted link for its health services (bumble backend only)"
    )
    passkey: int = Field(123456, ge=0, le=999_999, description="what it shows to pair")


class SimConfig(_Section):
    """The simulated radio environment."""

    devices: tuple[SimDeviceConfig, ...] = ()
    advert_interval_ms: int = Field(50, ge=1, le=10_000)
    speed: float = Field(1.0, gt=0.0, le=1000.0, description="simulated seconds per real second")
    connection_interval_ms: float | None = Field(
        None,
        ge=7.5,
        le=4000.0,
        description="bumble backend: data only at connection events (None: each packet at once)",
    )


class DiscoveryConfig(_Section):
    """What `wgw scan` counts as selected besides the configured devices."""

    service_uuids: tuple[str, ...] = ()
    names: tuple[str, ...] = Field((), description="shell-style patterns, e.g. 'Polar H10 *'")
    addresses: tuple[MacAddress, ...] = ()


class BleConfig(_Section):
    """Bluetooth: which bleak backend, and the bounds on every radio await."""

    backend: Literal["bluez", "sim", "bumble"] = Field(
        "bluez", description="bumble: the simulated devices over bumble's stack (bumble extra)"
    )
    scan_timeout_s: PositiveSeconds = 10.0
    connect_timeout_s: PositiveSeconds = 10.0
    gatt_timeout_s: PositiveSeconds = 5.0
    reconnect_min_s: PositiveSeconds = 0.5
    reconnect_max_s: PositiveSeconds = 30.0
    notification_queue_max: int = Field(1000, ge=1)
    stream_silence_s: PositiveSeconds = 10.0
    max_connections: int = Field(5, ge=1, le=32, description="BlueZ adapters hold only a few")
    adapter: str = Field("hci0", pattern=r"^hci\d{1,2}$", description="the adapter to recover")
    adapter_recovery: bool = Field(True, description="power-cycle a stalled adapter (BlueZ)")
    backfill: bool = Field(
        True, description="fetch the records a device kept while the link was down (RACP)"
    )
    adapter_silence_s: PositiveSeconds = Field(
        90.0, description="scanning without any advertisement for this long: a stall"
    )
    adapter_recovery_interval_s: PositiveSeconds = Field(
        300.0, description="least time between recoveries; doubles while they do not help"
    )
    discovery: DiscoveryConfig = DiscoveryConfig()
    sim: SimConfig = SimConfig()

    @field_validator("backend")
    @classmethod
    def _backend_installed(cls, backend: str) -> str:
        if backend == "bumble" and importlib.util.find_spec("bumble") is None:
            msg = "bumble needs the bumble extra: pip install 'wearable-gateway[bumble]'"
            raise ValueError(msg)
        return backend


class PmdStreamConfig(_Section):
    """A Polar PMD stream to start on connect, with the settings to ask for.

    ``ppi`` (peak-to-peak intervals: Verity Sense, OH1) takes no settings; the others need rate,
    resolution and channels. A setting the device does not offer is replaced by the nearest it
    does (said in the log); ``range`` (acc: G, gyro: deg/s), when not given, is the largest.
    """

    measurement: Literal["ecg", "ppg", "acc", "ppi", "gyro", "mag"]
    sample_rate_hz: int | None = Field(None, ge=1, le=10_000)
    resolution_bits: int | None = Field(None, ge=1, le=32)
    channels: int | None = Field(None, ge=1, le=32)
    range: int | None = Field(None, ge=1, le=32_767)

    @model_validator(mode="after")
    def _settings_where_needed(self) -> Self:
        given = (self.sample_rate_hz, self.resolution_bits, self.channels)
        if self.measurement == "ppi" and any(v is not None for v in (*given, self.range)):
            msg = "ppi takes no sample_rate_hz, resolution_bits, channels or range"
            raise ValueError(msg)
        if self.measurement != "ppi" and any(v is None for v in given):
            msg = f"{self.measurement} needs sample_rate_hz, resolution_bits and channels"
            raise ValueError(msg)
        return self


def _movesense_path(path: str) -> str:
    parse_path(path)  # ValueError: says what the gateway reads
    return path


MovesensePath = Annotated[str, AfterValidator(_movesense_path)]


class DeviceConfig(_Section):
    """A device the gateway connects to."""

    id: TopicSafeId
    address: MacAddress
    pmd: tuple[PmdStreamConfig, ...] = ()
    movesense: tuple[MovesensePath, ...] = Field(
        (), description="Movesense resources to subscribe: /Meas/ECG/250, /Meas/IMU6/52, ..."
    )
    participant: TopicSafeId | None = Field(None, description="who wears it (study context)")
    site: str | None = Field(None, max_length=64)
    study: str | None = Field(None, max_length=64)
    pairing: Literal["none", "just_works", "passkey"] = Field(
        "none", description="pair and bond at connect: a device that wants an encrypted link"
    )
    passkey: SecretStr | None = Field(None, description="six digits the device shows")
    set_clock: bool = Field(
        False, description="write the host's local time to its Current Time at each connect"
    )

    @model_validator(mode="after")
    def _passkey_with_passkey_pairing(self) -> DeviceConfig:
        passkey = self.passkey.get_secret_value() if self.passkey is not None else None
        if self.pairing == "passkey" and (passkey is None or not re.fullmatch(r"\d{6}", passkey)):
            msg = "pairing: passkey needs passkey: the six digits the device shows"
            raise ValueError(msg)
        if self.pairing != "passkey" and passkey is not None:
            msg = "passkey is used only with pairing: passkey"
            raise ValueError(msg)
        return self


class LslConfig(_Section):
    """Lab Streaming Layer (the ``lsl`` extra): each device stream an LSL outlet on LSL's clock.

    A live lane beside MQTT: it never waits for the outbox; a full queue drops (counted).
    """

    enabled: bool = False
    backfill: bool = Field(
        False, description="push readings fetched from a device's memory too, at their past times"
    )
    marker_inlet: str | None = Field(
        None, min_length=1, description="an LSL marker stream (by name) stored like wgw mark"
    )
    queue_max: int = Field(10_000, ge=1)

    @model_validator(mode="after")
    def _library(self) -> Self:
        if self.enabled:
            try:
                lsl_library.load()
            except lsl_library.LslUnavailableError as e:
                msg = f"lsl.enabled needs pylsl or mne-lsl with a liblsl: {e}"
                raise ValueError(msg) from None
        return self


class StorageConfig(_Section):
    """The outbox: a segment log (appended once a flush interval) and its SQLite index.

    ``flush_interval_ms`` bounds what a crash of the process can lose. The index commits every
    ``index_interval_s``; a crash in between rebuilds it from the log at the next start, and
    other processes (``wgw queue``, ``wgw export``) see rows once it has committed. Each index
    commit costs whole SQLite pages, so a shorter interval wears the card faster.
    """

    path: Path = Path("state/wgw.sqlite")
    flush_interval_ms: int = Field(1000, ge=1, le=60_000)
    flush_max_rows: int = Field(500, ge=1, le=100_000)
    queue_max_rows: int = Field(10_000, ge=1)
    synchronous: Literal["normal", "full"] = "normal"
    index_interval_s: PositiveSeconds = Field(
        60.0, description="how often the SQLite index of the segment log commits"
    )
    max_db_mb: float | None = Field(
        None, gt=0, description="cap on stored data; past it the retention policy evicts"
    )


class MqttTlsConfig(_Section):
    """TLS to the broker: which CA signed it, and a client certificate if it asks for one."""

    enabled: bool = False
    ca_file: FilePath | None = Field(None, description="PEM; none: the system's CAs")
    cert_file: FilePath | None = Field(None, description="PEM client certificate")
    key_file: FilePath | None = Field(None, description="PEM key of the client certificate")
    verify_hostname: bool = True

    @model_validator(mode="after")
    def _pair(self) -> Self:
        if (self.cert_file is None) != (self.key_file is None):
            msg = "cert_file and key_file go together"
            raise ValueError(msg)
        return self


class MqttConfig(_Section):
    """The local MQTT broker the live data is published to."""

    enabled: bool = True
    host: str = Field("127.0.0.1", min_length=1)
    port: int = Field(1883, ge=1, le=65_535)
    username: str | None = None
    password: SecretStr | None = None
    topic_prefix: TopicSafeId = "wgw"
    vitals_qos: Literal[0, 1, 2] = 1
    keepalive_s: int = Field(30, ge=5, le=3600)
    publish_timeout_s: PositiveSeconds = 10.0
    state_interval_s: PositiveSeconds = 5.0
    live: bool = Field(True, description="publish frames as they arrive, before their commit")
    waveform_qos: Literal[0, 1, 2] = 0
    publish_waveforms: bool = True
    live_queue_max: int = Field(1000, ge=1)
    live_grace_s: float = Field(
        2.0, ge=0.0, le=600.0, description="the backlog waits this long for the live lane"
    )
    reconnect_min_s: PositiveSeconds = 0.5
    reconnect_max_s: PositiveSeconds = 30.0
    tls: MqttTlsConfig = MqttTlsConfig()
    commands: bool = Field(
        False, description="accept study commands on <prefix>/<gateway>/cmd (restrict by ACL)"
    )
    homeassistant: bool = Field(False, description="Home Assistant MQTT discovery")
    homeassistant_prefix: TopicSafeId = "homeassistant"


class TcmConfig(_Section):
    """The TCM 12-meridian API (health upload); API.md part B."""

    base_url: HttpUrl = "https://api.tcm-ai.org/api/v1"
    api_key: SecretStr | None = None
    email: str | None = None
    password: SecretStr | None = None
    login_path: UrlPath = "/auth/login"
    refresh_path: UrlPath = "/auth/refresh"
    upload_path: UrlPath = "/health/upload"
    tongue_path: UrlPath = "/tongue/analyze"
    diagnose_path: UrlPath = "/meridian/diagnose"
    timeout_s: PositiveSeconds = 30.0
    verify_tls: bool = True
    ca_bundle: Path | None = Field(None, description="PEM file of extra CAs to trust")
    connect_timeout_s: PositiveSeconds = 10.0
    plan: Literal["free", "basic", "pro", "enterprise"] = "free"
    rate_limit_state: Path | None = Field(
        None, description="usage counts kept across restarts; default: beside the outbox"
    )
    rate_limit_scale: float = Field(
        1.0, gt=0.0, le=1.0, description="shrinks the plan's windows: emulation and tests only"
    )

    @model_validator(mode="after")
    def _one_way_to_authenticate(self) -> Self:
        if self.api_key is None and (self.email is None or self.password is None):
            msg = "set api_key, or both email and password"
            raise ValueError(msg)
        return self


class HeartVoiceConfig(_Section):
    """The HeartVoice lab API (ECG conversion); API.md part A."""

    base_url: HttpUrl = "https://api.heartvoice.com.cn"
    api_key: SecretStr | None = None
    ppg_flow_ecg_path: UrlPath = "/api/v1/experimental/ppgFlowEcg"
    mcma_path: UrlPath = "/api/v1/experimental/mcma"
    lead3_lead12_path: UrlPath = "/api/v1/experimental/lead3Lead12"
    diffusets_path: UrlPath = "/api/v1/experimental/diffuSets"
    timeout_s: PositiveSeconds = 60.0
    verify_tls: bool = True
    ca_bundle: Path | None = Field(None, description="PEM file of extra CAs to trust")
    connect_timeout_s: PositiveSeconds = 10.0


class CloudConfig(_Section):
    """Both cloud services."""

    tcm: TcmConfig
    heartvoice: HeartVoiceConfig = HeartVoiceConfig()


class UploadWhenConfig(_Section):
    """When uploads may run (a phone hub): which network, only charging, above a battery level.

    Read from ``sys_root`` (Linux's ``/sys``) and from NetworkManager where it runs. MQTT is not
    affected; readings wait in the outbox meanwhile.
    """

    network: Literal["any", "wifi", "unmetered"] = "any"
    charging: bool = False
    min_battery_pct: float = Field(0.0, ge=0.0, le=100.0)
    sys_root: Path = Path("/sys")
    check_interval_s: PositiveSeconds = Field(30.0, description="how often a wait looks again")


class SyncConfig(_Section):
    """How vitals reach the health upload API.

    ``realtime``: each closed interval is uploaded as soon as it is durable, packed with
    whatever else is waiting. ``batch``: every ``batch_interval_s``, everything closed since the
    last batch. Either way at most one request per ``min_request_interval_s``, and never faster
    than the plan's quota lasts.
    """

    mode: Literal["realtime", "batch"] = "realtime"
    batch_interval_s: PositiveSeconds = 900.0
    batch_max_records: int = Field(
        10_000, ge=1, le=50_000, description="readings per request (one device's)"
    )
    batch_max_bytes: int = Field(
        512 * 1024, ge=1024, le=16 * 1024 * 1024, description="largest request body"
    )
    record_interval_s: float = Field(
        60.0, ge=0.0, le=3600.0, description="one health record per interval; 0: per reading"
    )
    record_grace_s: float = Field(
        5.0, ge=0.0, le=600.0, description="an interval is uploaded this long after it ends"
    )
    min_request_interval_s: float = Field(1.0, ge=0, le=3600)
    backfill_after_s: PositiveSeconds = Field(
        300.0, description="a backlog older than this drains on its own lane, live data first"
    )
    backfill_share: float = Field(
        0.5, ge=0.0, le=1.0, description="the backfill lane's share of requests while both run"
    )
    retry_min_s: PositiveSeconds = 1.0
    retry_max_s: PositiveSeconds = 300.0
    upload_when: UploadWhenConfig = UploadWhenConfig()


class BandConfig(_Section):
    """A band-pass (and optional mains notch) for one kind of signal."""

    low_hz: float = Field(gt=0.0)
    high_hz: float = Field(gt=0.0)
    notch_hz: Literal[50, 60] | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.low_hz >= self.high_hz:
            msg = "low_hz must be below high_hz"
            raise ValueError(msg)
        return self


class DspConfig(_Section):
    """The signal chain (``gateway/pipeline``): filters, grid, windows and quality gates."""

    ppg: BandConfig = BandConfig(low_hz=0.5, high_hz=8.0)
    ecg: BandConfig = BandConfig(low_hz=0.5, high_hz=40.0)
    resample_hz: int = Field(500, ge=50, le=2000, description="the conversion APIs' rate")
    window_s: float = Field(10.0, gt=1.0, le=600.0)
    overlap: float = Field(0.0, ge=0.0, lt=1.0)
    max_gap_s: float = Field(1.0, gt=0.0, le=60.0)
    settle_s: float = Field(2.0, ge=0.0, le=60.0)
    sqi_min_ppg: float = 0.5
    sqi_min_ecg: float = 5.0


class ConversionConfig(_Section):
    """PPG -> ECG and ECG -> 12 leads through the HeartVoice API (``gateway/sinks/conversion``)."""

    enabled: bool = False
    interval_s: float = Field(
        60.0, ge=0.0, le=86_400.0, description="at most one window per device and stream"
    )
    twelve_lead: bool = Field(False, description="PPG results go on to 12 leads (mcma)")
    max_requests_per_min: int = Field(
        6, ge=1, le=600, description="this sink's own budget: it never crowds out the uploads"
    )
    retry_min_s: PositiveSeconds = 1.0
    retry_max_s: PositiveSeconds = 300.0


class ClockConfig(_Section):
    """Clock trust (``gateway/wallclock.py``)."""

    check_interval_s: PositiveSeconds = 1.0
    jump_threshold_s: float = Field(
        2.0, gt=0.0, le=3600.0, description="a larger move of UTC against monotonic is a jump"
    )
    device_disagreement_s: float = Field(
        5.0, gt=0.0, description="a device clock further off than this is reported"
    )


class AlertsConfig(_Section):
    """When the gateway raises an alert (status API, metrics, retained on MQTT)."""

    check_interval_s: PositiveSeconds = 5.0
    rate_window_s: PositiveSeconds = Field(30.0, description="samples/s is measured over this")
    stream_stall_s: PositiveSeconds = Field(
        60.0, description="a waveform or heart-rate stream without data this long: stalled"
    )
    backlog_growing_s: PositiveSeconds = Field(
        1800.0, description="a sink's backlog that has not shrunk for this long: growing"
    )
    frames_waiting_max: int = Field(
        200, ge=1, description="frames waiting to be written past this: the gateway is behind"
    )


class LoggingConfig(_Section):
    """How the daemon's log lines look on stderr (journald keeps them either way)."""

    format: Literal["text", "json"] = Field("text", description="json: one object per line")


class HttpConfig(_Section):
    """The local status API and live page.

    With ``token`` set, every route but ``/healthz`` asks for it (``Authorization: Bearer``,
    or the page's cookie from ``/?token=``).
    """

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(8321, ge=0, le=65_535)
    token: SecretStr | None = Field(None, description="set it from WGW_HTTP__TOKEN")


class Settings(BaseSettings):
    """The whole configuration: init arguments > ``WGW_*`` env (``__`` nests) > the YAML file."""

    model_config = SettingsConfigDict(
        env_prefix="WGW_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    gateway_id: TopicSafeId = "gateway"
    shutdown_timeout_s: PositiveSeconds = 10.0
    ble: BleConfig = BleConfig()
    devices: tuple[DeviceConfig, ...] = ()
    storage: StorageConfig = StorageConfig()
    mqtt: MqttConfig = MqttConfig()
    cloud: CloudConfig
    sync: SyncConfig = SyncConfig()
    dsp: DspConfig = DspConfig()
    conversion: ConversionConfig = ConversionConfig()
    clock: ClockConfig = ClockConfig()
    alerts: AlertsConfig = AlertsConfig()
    logging: LoggingConfig = LoggingConfig()
    http: HttpConfig = HttpConfig()
    lsl: LslConfig = LslConfig()

    @model_validator(mode="after")
    def _device_ids_unique(self) -> Self:
        seen: set[str] = set()
        for device in self.devices:
            if device.id in seen:
                msg = f"device id {device.id!r} is used twice"
                raise ValueError(msg)
            seen.add(device.id)
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Init > env > YAML (the file named by ``model_config['yaml_file']``)."""
        return (init_settings, env_settings, YamlConfigSettingsSource(settings_cls))


def load_settings(path: Path) -> Settings:
    """Read and validate ``path`` (with env overrides).

    Raises:
        ConfigError: The file is missing or not YAML, or a field is refused; one problem per
            line, each starting with the field's dotted path.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from None
    try:
        content = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: not valid YAML: {exc}"]) from None
    if content is not None and not isinstance(content, dict):
        raise ConfigError([f"{path}: the top level must be a mapping"])
    bound = type(
        "Settings", (Settings,), {"model_config": {**Settings.model_config, "yaml_file": path}}
    )
    try:
        settings = bound()
    except ValidationError as exc:
        raise ConfigError([_describe(error) for error in exc.errors()]) from None
    assert isinstance(settings, Settings)
    return settings


def _describe(error: object) -> str:
    assert isinstance(error, dict)
    path = ""
    for part in error.get("loc", ()):
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    reason = str(error.get("msg", "invalid"))
    if error.get("type") == "extra_forbidden":
        reason = "unknown field"
    return f"{path or '(top level)'}: {reason}"
