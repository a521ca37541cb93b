"""MQTT sink: vitals and conversion results at QoS 1, acked on PUBACK; retained online status.

Whatever the broker did not confirm stays in the outbox and is published, in order, after the
next connect.

Size: the connection's loops (two live lanes, the backlog, states, commands) share one client
and one reconnect; Home Assistant's messages are built in ``homeassistant``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import socket
import ssl
import time
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import aiomqtt

from buffers.errors import StorageError
from drivers.backoff import Backoff
from drivers.bounded import BoundedQueue, FullPolicy
from gateway.cancellation import StopFlag
from gateway.codec import (
    CONVERTED_STREAMS,
    mqtt_converted_payload,
    mqtt_payload,
    mqtt_state_payload,
    reading_of,
)
from gateway.sinks import homeassistant

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable, Sequence

    from buffers.outbox import Outbox
    from buffers.records import OutboxRecord
    from drivers.ble.link_spec import LinkStatistics
    from gateway.alerts import Alert
    from gateway.config import MqttConfig, MqttTlsConfig
    from gateway.readings import Reading

log = logging.getLogger(__name__)

SINK: Final = "mqtt"
_LIVE_IN_FLIGHT: Final = 16  # publications awaiting the broker, per lane


def wants(record: OutboxRecord) -> bool:
    """Every vitals reading, gap marker and conversion result (raw waveforms are live only)."""
    return record.kind in ("vital", "gap") or (
        record.kind == "waveform" and record.stream in CONVERTED_STREAMS
    )


_LEASE_ROWS: Final = 200
_STORE_RETRY_S: Final = 1.0  # the backlog looks at a failing store again this often


@dataclass(frozen=True, slots=True)
class MqttStatistics:
    """What the sink has done since start."""

    connected: bool
    connects: int
    published: int
    published_by_device: dict[str, int]
    errors: int
    live_published: int
    live_dropped: int  # the live lanes were full (vitals and gaps still go by the backlog)
    live_stale: int  # queued while the broker was away, dropped at the reconnect (the same)


class MqttSink:
    """Keeps a broker connection and publishes the outbox's vitals backlog through it."""

    def __init__(
        self,
        outbox: Outbox,
        config: MqttConfig,
        gateway_id: str,
        *,
        device_states: Callable[[], Iterable[LinkStatistics]] | None = None,
        on_command: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]] | None = None,
        alerts: Callable[[], Sequence[Alert]] | None = None,
    ) -> None:
        self._outbox = outbox
        self._config = config
        self._gateway_id = gateway_id
        self._status_topic = f"{config.topic_prefix}/{gateway_id}/status"
        self._backoff = Backoff(config.reconnect_min_s, config.reconnect_max_s)
        self._connected = False
        self._connects = 0
        self._published = 0
        self._by_device: Counter[str] = Counter()
        self._errors = 0
        self._device_states = device_states
        self._alerts = alerts
        self._alerts_topic = f"{config.topic_prefix}/{gateway_id}/alerts"
        self._on_command = on_command if config.commands else None
        self._command_topic = f"{config.topic_prefix}/{gateway_id}/cmd"
        # Live lane: frames as they arrive, before their commit. Full policy: drop the newest,
        # counted (vitals and gaps still come from the outbox backlog; a QoS 0 waveform chunk
        # is simply not live).
        # Vitals and gaps have a lane of their own, so that they never wait behind a burst of
        # waveform chunks (a chunk costs a JSON list of samples).
        self._live: BoundedQueue[Reading] = BoundedQueue(
            config.live_queue_max, FullPolicy.DROP_NEWEST
        )
        self._live_waves: BoundedQueue[Reading] = BoundedQueue(
            config.live_queue_max, FullPolicy.DROP_NEWEST
        )
        self._confirmed: set[tuple[str, str, str, int]] = set()
        self._live_published = 0
        self._live_stale = 0
        self._grace_s = config.live_grace_s if config.live else 0.0
        self._homeassistant = (
            homeassistant.Announcer(
                homeassistant.Topics(config.homeassistant_prefix, config.topic_prefix, gateway_id)
            )
            if config.homeassistant
            else None
        )
        self._facts: dict[str, homeassistant.DeviceFacts] = {}  # as of the last state published
        self._stopping = StopFlag()

    def stop(self) -> None:
        """The daemon is about to cancel :meth:`run`: every loop ends at its next turn."""
        self._stopping.set()

    def statistics(self) -> MqttStatistics:
        """Counters since start."""
        return MqttStatistics(
            self._connected,
            self._connects,
            self._published,
            dict(self._by_device),
            self._errors,
            self._live_published,
            self._live.dropped + self._live_waves.dropped,
            self._live_stale,
        )

    def offer_live(self, reading: Reading) -> None:
        """A reading just arrived: publish it now if the lane has room (never waits)."""
        waveform = reading.row_kind == "waveform"
        if (
            not self._config.live
            or reading.backfilled  # history: the backlog lane publishes it
            or (waveform and not self._config.publish_waveforms)
        ):
            return
        (self._live_waves if waveform else self._live).offer(reading)

    def topic(self, device_id: str, leaf: str) -> str:
        """``<prefix>/<gateway>/<device>/<leaf>``: ``vitals``, ``backfill``, ``gaps``, ``state``."""
        return f"{self._config.topic_prefix}/{self._gateway_id}/{device_id}/{leaf}"

    async def run(self) -> None:
        """Connect, publish, reconnect with backoff; until cancelled."""
        attempt = 0
        while True:
            self._stopping.check()
            try:
                async with self._client() as client:
                    self._connected = True
                    self._connects += 1
                    attempt = 0
                    log.info("MQTT connected to %s:%d", self._config.host, self._config.port)
                    try:
                        await client.publish(self._status_topic, b"online", qos=1, retain=True)
                        if self._homeassistant is not None:
                            await self._homeassistant.connected(client, self._facts)
                        async with asyncio.TaskGroup() as tg:
                            tg.create_task(
                                self._publish_live(client, self._live), name="wgw.mqtt.live"
                            )
                            tg.create_task(
                                self._publish_live(client, self._live_waves),
                                name="wgw.mqtt.live_waveforms",
                            )
                            tg.create_task(self._publish_backlog(client), name="wgw.mqtt.backlog")
                            tg.create_task(self._publish_states(client), name="wgw.mqtt.state")
                            if self._on_command is not None:
                                tg.create_task(self._serve_commands(client), name="wgw.mqtt.cmd")
                    finally:
                        self._connected = False
                        with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                            async with asyncio.timeout(1.0):
                                await client.publish(
                                    self._status_topic, b"offline", qos=1, retain=True
                                )
            except* aiomqtt.MqttError as group:
                exc = group.exceptions[0]
                self._errors += 1
                attempt += 1
                delay_s = self._backoff.delay_s(attempt)
                log.warning("MQTT unavailable (%s), retry in %.1f s", exc, delay_s)
                await asyncio.sleep(delay_s)

    def _client(self) -> aiomqtt.Client:
        cfg = self._config
        client = aiomqtt.Client(
            cfg.host,
            cfg.port,
            username=cfg.username,
            password=cfg.password.get_secret_value() if cfg.password else None,
            identifier=f"wgw-{self._gateway_id}",
            keepalive=cfg.keepalive_s,
            timeout=cfg.publish_timeout_s,
            will=aiomqtt.Will(self._status_topic, b"offline", qos=1, retain=True),
            tls_context=tls_context(cfg.tls) if cfg.tls.enabled else None,
            # paho leaves Nagle's algorithm on: a small PUBLISH written while the previous one
            # is unacknowledged waits for the broker's delayed ACK, up to 40 ms on Linux
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
        )
        # aiomqtt logs a warning per publication past 10 awaiting the broker; the two live
        # lanes keep up to 32 in flight on purpose (the backlog and states publish one at a
        # time), so only more than that is worth a line in the journal
        client.pending_calls_threshold = 2 * _LIVE_IN_FLIGHT + 8
        return client

    async def _publish_backlog(self, client: aiomqtt.Client) -> None:
        while True:
            self._stopping.check()
            try:
                rows = await self._outbox.lease(SINK, _LEASE_ROWS)
            except StorageError:  # a failing disk: the live lanes go on, the backlog waits
                self._outbox.forget_leases(SINK)
                await asyncio.sleep(_STORE_RETRY_S)
                continue
            if not rows:
                await self._outbox.wait_committed(timeout_s=1.0)
                continue
            delivered: list[int] = []
            wait_s = 0.0
            try:
                for row in rows:
                    r = row.record
                    key = (r.kind, r.device_id, r.stream, r.seq)
                    if key in self._confirmed:  # the live lane had it confirmed already
                        self._confirmed.discard(key)
                    elif abs(age_s := time.time() - r.t0_s) < self._grace_s:
                        # give the live lane its head start, then look again (a row stamped
                        # further in the future than that, by a clock that ran ahead, does
                        # not wait for our clock to catch up)
                        wait_s = self._grace_s - max(age_s, 0.0)
                        break
                    elif r.stream in CONVERTED_STREAMS:
                        topic = self.topic(r.device_id, r.stream)
                        payload = mqtt_converted_payload(r)
                        await client.publish(topic, payload, qos=self._config.vitals_qos)
                        self._by_device[r.device_id] += 1
                    else:
                        reading = reading_of(r)  # the row decoded once, for every use below
                        await client.publish(*self._message(reading), qos=self._config.vitals_qos)
                        self._by_device[r.device_id] += 1
                        await self._update_homeassistant(client, reading)
                    delivered.append(row.id)
            finally:
                # Ack what the broker confirmed; the rest is offered again after reconnect.
                await self._outbox.release(SINK, [r.id for r in rows[len(delivered) :]])
                if delivered:
                    self._published += len(delivered)
                    await self._outbox.ack(SINK, delivered)
            if wait_s:  # look again soon: the live lane may confirm it meanwhile
                await asyncio.sleep(min(wait_s, 0.2))

    def _message(self, reading: Reading) -> tuple[str, bytes]:
        kind, device_id = reading.row_kind, reading.frame.device_id
        if kind == "gap":
            leaf = "gaps"
        elif kind == "waveform":
            leaf = reading.frame.stream
        else:  # live dashboards see only live data
            leaf = "backfill" if reading.backfilled else "vitals"
        return self.topic(device_id, leaf), mqtt_payload(reading)

    async def _publish_live(self, client: aiomqtt.Client, lane: BoundedQueue[Reading]) -> None:
        """Publish frames as they arrive; what was confirmed need not come from the backlog.

        Several publications are in flight at once: a reading does not wait for the broker's
        acknowledgement of the one before (MQTT keeps their order on the connection).
        """
        while not lane.empty():  # what queued up while the broker was away is stale
            lane.get_nowait()
            self._live_stale += 1
        slots = asyncio.Semaphore(_LIVE_IN_FLIGHT)
        async with asyncio.TaskGroup() as tg:
            while True:
                self._stopping.check()
                r = await lane.get()
                await slots.acquire()
                tg.create_task(self._publish_one(client, r, slots))

    async def _publish_one(
        self, client: aiomqtt.Client, reading: Reading, slots: asyncio.Semaphore
    ) -> None:
        try:
            kind, frame = reading.row_kind, reading.frame
            waveform = kind == "waveform"
            qos = self._config.waveform_qos if waveform else self._config.vitals_qos
            await client.publish(*self._message(reading), qos=qos)
            self._live_published += 1
            if not waveform:
                self._by_device[frame.device_id] += 1
            if not waveform and qos > 0:
                self._confirmed.add((kind, frame.device_id, frame.stream, frame.seq))
            await self._update_homeassistant(client, reading)
        finally:
            slots.release()

    async def _publish_states(self, client: aiomqtt.Client) -> None:
        """Each device's state and the gateway's alerts, retained, whenever they changed."""
        last: dict[str, bytes] = {}
        while True:
            self._stopping.check()
            if self._alerts is not None:
                body = json.dumps([dataclasses.asdict(a) for a in self._alerts()]).encode()
                if last.get(self._alerts_topic) != body:
                    await client.publish(self._alerts_topic, body, qos=1, retain=True)
                    last[self._alerts_topic] = body
            for state in self._device_states() if self._device_states else ():
                payload = mqtt_state_payload(state)
                if last.get(state.device_id) != payload:
                    await client.publish(
                        self.topic(state.device_id, "state"), payload, qos=1, retain=True
                    )
                    last[state.device_id] = payload
                if self._homeassistant is not None:
                    facts = self._facts[state.device_id] = homeassistant.facts_of(state)
                    await self._homeassistant.device(
                        client, state.device_id, facts, battery=state.battery_pct is not None
                    )
            await asyncio.sleep(self._config.state_interval_s)

    async def _serve_commands(self, client: aiomqtt.Client) -> None:
        """Study commands on ``<prefix>/<gateway>/cmd``.

        JSON ``{"action", "command_id", ...fields}`` (the fields of the local API); the answer,
        ``{"command_id", "result"}`` (what was stored) or ``{"command_id", "error"}``, goes to
        ``.../cmd/result``.
        """
        assert self._on_command is not None
        await client.subscribe(self._command_topic, qos=1)
        async for message in client.messages:
            if str(message.topic) != self._command_topic:
                continue
            try:
                body = json.loads(message.payload) if isinstance(message.payload, bytes) else None
            except ValueError:
                body = None
            if not isinstance(body, dict):
                answer: dict[str, Any] = {"error": "expected a JSON object"}
            else:
                answer = {"command_id": body.get("command_id"), **await self._on_command(body)}
            await client.publish(
                f"{self._command_topic}/result", json.dumps(answer).encode(), qos=1
            )

    async def _update_homeassistant(self, client: aiomqtt.Client, reading: Reading) -> None:
        """A vitals reading went out: Home Assistant's sensors of its fields."""
        if self._homeassistant is not None:
            facts = self._facts.get(reading.frame.device_id, homeassistant.DeviceFacts())
            await self._homeassistant.reading(client, reading, facts)


def tls_context(tls: MqttTlsConfig) -> ssl.SSLContext:
    """The client side of TLS to the broker, verified against ``ca_file`` (else the system)."""
    context = ssl.create_default_context(cafile=str(tls.ca_file) if tls.ca_file else None)
    if tls.cert_file is not None and tls.key_file is not None:
        context.load_cert_chain(tls.cert_file, tls.key_file)
    context.check_hostname = tls.verify_hostname
    return context
