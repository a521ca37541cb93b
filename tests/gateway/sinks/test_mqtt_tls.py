"""MQTT over TLS: a Mosquitto that demands a client certificate signed by our own CA."""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import time
from typing import TYPE_CHECKING

import aiomqtt
import pytest
import trustme

from buffers.outbox import Outbox
from buffers.records import OutboxRecord
from gateway.config import MqttConfig, load_settings
from gateway.errors import ConfigError
from gateway.sinks import mqtt
from tests.conftest import Broker, make_broker
from tests.support import wait_for

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


class Pki:
    def __init__(self, folder: Path) -> None:
        ca = trustme.CA()
        self.ca = folder / "ca.pem"
        ca.cert_pem.write_to_path(str(self.ca))
        server = ca.issue_cert("127.0.0.1", "localhost")
        self.server_cert, self.server_key = folder / "server.pem", folder / "server.key"
        server.cert_chain_pems[0].write_to_path(str(self.server_cert))
        server.private_key_pem.write_to_path(str(self.server_key))
        client = ca.issue_cert("gateway@wgw.example")
        self.client_cert, self.client_key = folder / "client.pem", folder / "client.key"
        client.cert_chain_pems[0].write_to_path(str(self.client_cert))
        client.private_key_pem.write_to_path(str(self.client_key))

    def client_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca))
        context.load_cert_chain(self.client_cert, self.client_key)
        return context


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[tuple[Broker, Pki]]:
    pki = Pki(tmp_path)
    broker = make_broker(tmp_path)
    user = "user root\n" if os.geteuid() == 0 else ""
    broker.conf.write_text(
        f"listener {broker.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        f"{user}log_dest none\ncafile {pki.ca}\ncertfile {pki.server_cert}\n"
        f"keyfile {pki.server_key}\nrequire_certificate true\n"
    )
    broker.start()
    yield broker, pki
    broker.stop()


async def test_vitals_reach_a_subscriber_over_mutual_tls(
    tmp_path: Path, tls_broker: tuple[Broker, Pki]
) -> None:
    """Test the sink's TLS (CA + client certificate) against a broker that requires both."""
    broker, pki = tls_broker
    config = MqttConfig.model_validate(
        {
            "host": broker.host,
            "port": broker.port,
            "topic_prefix": "tls",
            "tls": {
                "enabled": True,
                "ca_file": str(pki.ca),
                "cert_file": str(pki.client_cert),
                "key_file": str(pki.client_key),
            },
        }
    )
    received: list[dict[str, object]] = []
    ready = asyncio.Event()

    async def subscribe() -> None:
        async with aiomqtt.Client(
            broker.host, broker.port, tls_context=pki.client_context()
        ) as client:
            await client.subscribe("tls/gw/+/vitals", qos=1)
            ready.set()
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                received.append(json.loads(message.payload))

    subscriber = asyncio.create_task(subscribe())
    await ready.wait()
    async with Outbox(
        tmp_path / "o.sqlite", {mqtt.SINK: mqtt.wants}, flush_interval_ms=5
    ) as outbox:
        sink = mqtt.MqttSink(outbox, config, "gw")
        task = asyncio.create_task(sink.run())
        payload = json.dumps({"heart_rate_bpm": 71}).encode()
        await outbox.put(OutboxRecord("vital", "w1", "heart_rate", 0, time.time(), payload))
        await wait_for(lambda: len(received) == 1)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    subscriber.cancel()
    await asyncio.gather(subscriber, return_exceptions=True)
    assert received[0]["values"] == {"heart_rate_bpm": 71}
    assert sink.statistics().connects == 1


async def test_without_a_client_certificate_the_broker_refuses_and_nothing_is_lost(
    tmp_path: Path, tls_broker: tuple[Broker, Pki]
) -> None:
    """Test a refused handshake: counted, retried, the row still in the backlog."""
    broker, pki = tls_broker
    config = MqttConfig.model_validate(
        {
            "host": broker.host,
            "port": broker.port,
            "reconnect_min_s": 0.05,
            "reconnect_max_s": 0.1,
            "publish_timeout_s": 0.5,  # TLS 1.3: the refusal comes after the handshake
            "tls": {"enabled": True, "ca_file": str(pki.ca)},
        }
    )
    async with Outbox(
        tmp_path / "o.sqlite", {mqtt.SINK: mqtt.wants}, flush_interval_ms=5
    ) as outbox:
        sink = mqtt.MqttSink(outbox, config, "gw")
        task = asyncio.create_task(sink.run())
        await outbox.put(OutboxRecord("vital", "w1", "heart_rate", 0, time.time(), b"{}"))
        await wait_for(lambda: sink.statistics().errors >= 2)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await outbox.flush()
        backlog = (await outbox.statistics()).backlog[mqtt.SINK]
    assert sink.statistics().connects == 0
    assert backlog.pending == 1


def test_a_missing_certificate_file_is_refused_at_start(tmp_path: Path) -> None:
    """Test the config error names the field and the reason."""
    path = tmp_path / "config.yaml"
    path.write_text(
        "cloud: {tcm: {api_key: k}}\nmqtt: {tls: {enabled: true, ca_file: /nonexistent/ca.pem}}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert "mqtt.tls.ca_file" in str(caught.value)
    path.write_text(
        f"cloud: {{tcm: {{api_key: k}}}}\nmqtt: {{tls: {{enabled: true, cert_file: {path}}}}}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert "cert_file and key_file go together" in str(caught.value)
