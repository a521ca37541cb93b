"""MQTT sink: vitals rows published at QoS 1 and acked on PUBACK; retained online/offline status.

Whatever the broker did not confirm stays in the outbox and is published, in order, after the
next connect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import aiomqtt

from gateway.codec import mqtt_vitals_payload
from gateway.retry import Backoff

if TYPE_CHECKING:
    from buffers.outbox import Outbox
    from buffers.records import OutboxRecord
    from gateway.config import MqttConfig

log = logging.getLogger(__name__)

SINK: Final = "mqtt"


def wants(record: OutboxRecord) -> bool:
    """Every vitals reading (waveforms and gaps come with the live lane, later)."""
    return record.kind == "vital"


_LEASE_ROWS: Final = 200


@dataclass(frozen=True, slots=True)
class MqttStatistics:
    """What the sink has done since start."""

    connected: bool
    connects: int
    published: int
    published_by_device: dict[str, int]
    errors: int


class MqttSink:
    """Keeps a broker connection and publishes the outbox's vitals backlog through it."""

    def __init__(self, outbox: Outbox, config: MqttConfig, gateway_id: str) -> None:
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

    def statistics(self) -> MqttStatistics:
        """Counters since start."""
        return MqttStatistics(
            self._connected, self._connects, self._published, dict(self._by_device), self._errors
        )

    def vitals_topic(self, device_id: str) -> str:
        """Where a device's vitals go."""
        return f"{self._config.topic_prefix}/{self._gateway_id}/{device_id}/vitals"

    async def run(self) -> None:
        """Connect, publish, reconnect with backoff; until cancelled."""
        attempt = 0
        while True:
            try:
                async with self._client() as client:
                    self._connected = True
                    self._connects += 1
                    attempt = 0
                    log.info("MQTT connected to %s:%d", self._config.host, self._config.port)
                    try:
                        await client.publish(self._status_topic, b"online", qos=1, retain=True)
                        await self._publish_backlog(client)
                    finally:
                        self._connected = False
                        with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                            async with asyncio.timeout(1.0):
                                await client.publish(
                                    self._status_topic, b"offline", qos=1, retain=True
                                )
            except aiomqtt.MqttError as exc:
                self._errors += 1
                attempt += 1
                delay_s = self._backoff.delay_s(attempt)
                log.warning("MQTT unavailable (%s), retry in %.1f s", exc, delay_s)
                await asyncio.sleep(delay_s)

    def _client(self) -> aiomqtt.Client:
        cfg = self._config
        return aiomqtt.Client(
            cfg.host,
            cfg.port,
            username=cfg.username,
            password=cfg.password.get_secret_value() if cfg.password else None,
            identifier=f"wgw-{self._gateway_id}",
            keepalive=cfg.keepalive_s,
            timeout=cfg.publish_timeout_s,
            will=aiomqtt.Will(self._status_topic, b"offline", qos=1, retain=True),
        )

    async def _publish_backlog(self, client: aiomqtt.Client) -> None:
        while True:
            rows = await self._outbox.lease(SINK, _LEASE_ROWS)
            if not rows:
                await self._outbox.wait_committed(timeout_s=1.0)
                continue
            delivered: list[int] = []
            try:
                for row in rows:
                    await client.publish(
                        self.vitals_topic(row.record.device_id),
                        mqtt_vitals_payload(row.record),
                        qos=self._config.vitals_qos,
                    )
                    delivered.append(row.id)
                    self._by_device[row.record.device_id] += 1
            finally:
                # Ack what the broker confirmed; the rest is offered again after reconnect.
                await self._outbox.release(SINK, [r.id for r in rows[len(delivered) :]])
                if delivered:
                    self._published += len(delivered)
                    await self._outbox.ack(SINK, delivered)
