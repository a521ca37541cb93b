"""Study context: participants, sessions and markers from the command line, on every row,
MQTT message and uploaded record; a reassignment never rewrites the past.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from typing import TYPE_CHECKING, Any

import aiomqtt
import yaml

from gateway.config import Settings
from gateway.daemon import Daemon
from gateway.emulator.app import STATE_KEY
from tests.support import daemon_config, free_port, run_wgw, wait_for

if TYPE_CHECKING:
    from pathlib import Path

    from aiohttp.test_utils import TestServer

    from tests.conftest import Broker


async def test_sessions_markers_and_a_reassignment_label_rows_messages_and_uploads(
    tmp_path: Path, broker: Broker, emulator: TestServer, topic_prefix: str
) -> None:
    """Test P017's session and marker, then the strap passed on to P018, end to end."""
    raw = daemon_config(
        tmp_path,
        str(emulator.make_url("")),
        [{"model": "strap", "address": "5A:00:00:00:00:01", "heart_rate_interval_ms": 50}],
        [{"id": "s1", "address": "5A:00:00:00:00:01", "participant": "P017", "site": "home"}],
        mqtt={
            "enabled": True,
            "host": broker.host,
            "port": broker.port,
            "topic_prefix": topic_prefix,
        },
        sync={"record_interval_s": 0, "min_request_interval_s": 0.05},
        http={"enabled": True, "port": free_port()},
    )
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(raw))
    messages: list[dict[str, Any]] = []

    async def subscribe(ready: asyncio.Event) -> None:
        async with aiomqtt.Client(broker.host, broker.port) as client:
            await client.subscribe(f"{topic_prefix}/gw/s1/vitals", qos=1)
            ready.set()
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                messages.append(json.loads(message.payload))

    ready = asyncio.Event()
    subscriber = asyncio.create_task(subscribe(ready))
    await ready.wait()
    daemon = Daemon(Settings.model_validate(raw))
    runner = asyncio.create_task(daemon.run())
    cli = ("--config", str(config))

    async def stored() -> int:
        return (await daemon.statistics()).stored_by_device.get("s1", 0)

    try:
        await daemon.wait_ready()
        await wait_for(lambda: len(messages) >= 5)
        code, out, err = await run_wgw(
            "session", "start", "--participant", "P017", "--label", "night", *cli
        )
        assert code == 0, err
        session = json.loads(out)
        assert (session["participant_id"], session["label"]) == ("P017", "night")
        code, _, err = await run_wgw("session", "start", "--participant", "P017", *cli)
        assert code == 1
        assert "P017 has an open session" in err
        count = await stored()
        await wait_for(lambda: len(messages) >= count + 10)
        code, out, err = await run_wgw("mark", "exercise start", *cli)
        assert code == 0, err
        marker = json.loads(out)
        assert (marker["participant_id"], marker["session_id"]) == ("P017", session["id"])
        code, out, err = await run_wgw("session", "stop", *cli)
        assert code == 0, err
        assert json.loads(out)["stopped_s"] is not None
        code, _, err = await run_wgw("session", "stop", *cli)
        assert code == 1
        assert "0 open sessions" in err
        code, out, err = await run_wgw("assign", "--device", "s1", "--participant", "P018", *cli)
        assert code == 0, err
        reassigned_at = json.loads(out)["from_s"]
        code, _, err = await run_wgw(
            "assign", "--device", "s1", "--participant", "P1", "--from", "2001-01-01", *cli
        )
        assert code == 1
        assert "starts later" in err  # the past is not rewritten
        count = await stored()
        await wait_for(lambda: len(messages) >= count + 5)
    finally:
        daemon.stop()
        await runner
        subscriber.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await subscriber

    with sqlite3.connect(tmp_path / "wgw.sqlite") as db:
        rows = db.execute(
            "SELECT t0_s, participant_id, session_id FROM records"
            " WHERE stream = 'heart_rate' ORDER BY id"
        ).fetchall()
        markers = db.execute("SELECT text, participant_id, session_id FROM markers").fetchall()
    assert markers == [("exercise start", "P017", session["id"])]
    labels = [(p, s) for _, p, s in rows]
    assert labels[0] == ("P017", None)
    assert ("P017", session["id"]) in labels
    assert labels[-1] == ("P018", None)
    assert all(p == "P018" for t, p, _ in rows if t >= reassigned_at)
    assert all(p == "P017" for t, p, _ in rows if t < reassigned_at)  # the past as it was
    in_session = {s for _, _, s in rows if s is not None}
    assert in_session == {session["id"]}
    by_seq = {m["seq"]: m for m in messages}
    assert {(m["participant_id"], m["session_id"]) for m in by_seq.values()} == set(labels)
    code, out, err = await run_wgw("queue", "sessions", *cli)
    assert code == 0, err
    assert f"{session['id']:>5}  P017" in out
    assert "night" in out
    assert "1 markers" in out
    code, out, err = await run_wgw("queue", "--participant", "P018", "--json", *cli)
    assert code == 0, err
    with sqlite3.connect(tmp_path / "wgw.sqlite") as db:
        (p018_rows,) = db.execute(
            "SELECT COUNT(*) FROM records WHERE participant_id = 'P018'"
        ).fetchone()
    assert json.loads(out)["rows"] == p018_rows > 0
    uploaded = emulator.app[STATE_KEY].records["s1"]
    assert {(r["participant_id"], r["session_id"]) for r in uploaded} <= set(labels)
    assert ("P017", session["id"]) in {(r["participant_id"], r["session_id"]) for r in uploaded}


async def test_sessions_and_api_assignments_survive_a_restart_config_changes_apply(
    tmp_path: Path, emulator: TestServer
) -> None:
    """Test a restart: the open session and an assignment made over the API stand; a changed
    participant in config then applies from that start on.
    """

    def raw(participant: str) -> dict[str, Any]:
        return daemon_config(
            tmp_path,
            str(emulator.make_url("")),
            [{"model": "strap", "address": "5A:00:00:00:00:01"}],
            [{"id": "s1", "address": "5A:00:00:00:00:01", "participant": participant}],
        )

    async def run(participant: str, then: Any = None) -> dict[str, Any]:
        daemon = Daemon(Settings.model_validate(raw(participant)))
        runner = asyncio.create_task(daemon.run())
        try:
            await daemon.wait_ready()
            if then is not None:
                await then(daemon.study_context())
            return daemon.study_context().state()
        finally:
            daemon.stop()
            await runner

    async def first(study: Any) -> None:
        await study.start_session("P017", "night")
        await study.assign("s1", "P018")

    await run("P017", first)
    again = await run("P017")
    changed = await run("P019")
    assert [s["participant_id"] for s in again["open_sessions"]] == ["P017"]
    assert [a["participant_id"] for a in again["assignments"]["s1"]] == ["P017", "P018"]
    history = changed["assignments"]["s1"]
    assert [(a["participant_id"], a["source"]) for a in history] == [
        ("P017", "config"),
        ("P018", "api"),
        ("P019", "config"),
    ]
    assert history[0]["from_s"] == 0.0 < history[1]["from_s"] < history[2]["from_s"]


async def test_study_commands_over_mqtt_are_answered_with_their_id(
    tmp_path: Path, broker: Broker, emulator: TestServer, topic_prefix: str
) -> None:
    """Test session start, a marker and a refused action through the command topic."""
    raw = daemon_config(
        tmp_path,
        str(emulator.make_url("")),
        [{"model": "strap", "address": "5A:00:00:00:00:01"}],
        [{"id": "s1", "address": "5A:00:00:00:00:01", "participant": "P017"}],
        mqtt={
            "enabled": True,
            "host": broker.host,
            "port": broker.port,
            "topic_prefix": topic_prefix,
            "commands": True,
        },
    )
    daemon = Daemon(Settings.model_validate(raw))
    runner = asyncio.create_task(daemon.run())
    answers: dict[str, dict[str, Any]] = {}
    command = f"{topic_prefix}/gw/cmd"
    try:
        await daemon.wait_ready()
        async with aiomqtt.Client(broker.host, broker.port) as client:
            await client.subscribe(f"{command}/result", qos=1)

            async def collect() -> None:
                async for message in client.messages:
                    assert isinstance(message.payload, bytes)
                    answer = json.loads(message.payload)
                    answers[str(answer.get("command_id"))] = answer

            collector = asyncio.create_task(collect())

            async def connected() -> bool:
                mqtt = (await daemon.statistics()).mqtt
                return mqtt is not None and mqtt.connected

            await wait_for(connected)

            async def listening() -> bool:  # the daemon subscribes right after connecting
                if "probe" in answers:
                    return True
                probe = {"command_id": "probe", "action": "dance"}
                await client.publish(command, json.dumps(probe).encode(), qos=1)
                await asyncio.sleep(0.05)
                return "probe" in answers

            await wait_for(listening)
            for body in (
                {
                    "command_id": "a1",
                    "action": "session_start",
                    "participant": "P017",
                    "label": "walk",
                },
                {"command_id": "a2", "action": "mark", "text": "stairs"},
                {"command_id": "a3", "action": "dance"},
                {"command_id": "a4", "action": "session_start", "participant": "P017"},
            ):
                await client.publish(command, json.dumps(body).encode(), qos=1)
            await wait_for(lambda: len(answers) == 5)
            collector.cancel()
    finally:
        daemon.stop()
        await runner
    assert answers["a1"]["result"]["participant_id"] == "P017"
    assert answers["a1"]["result"]["label"] == "walk"
    assert answers["a2"]["result"]["session_id"] == answers["a1"]["result"]["id"]
    assert answers["a3"]["error"].startswith("action: one of")
    assert "P017 has an open session" in answers["a4"]["error"]


async def test_the_settings_a_stream_started_with_are_noted_with_the_wearers_session(
    tmp_path: Path, emulator: TestServer
) -> None:
    """Test a strap asked for ECG at 250 Hz (it offers 130) and its accelerometer: each start
    leaves one marker with the settings used and what config asked, labelled like the rows,
    and the ECG rows say 130 Hz."""
    raw = daemon_config(
        tmp_path,
        str(emulator.make_url("")),
        [{"model": "strap", "address": "5A:00:00:00:00:01"}],
        [
            {
                "id": "s1",
                "address": "5A:00:00:00:00:01",
                "participant": "P017",
                "pmd": [
                    {
                        "measurement": "ecg",
                        "sample_rate_hz": 250,
                        "resolution_bits": 14,
                        "channels": 1,
                    },
                    {
                        "measurement": "acc",
                        "sample_rate_hz": 25,
                        "resolution_bits": 16,
                        "channels": 3,
                    },
                ],
            }
        ],
    )
    daemon = Daemon(Settings.model_validate(raw))
    runner = asyncio.create_task(daemon.run())
    try:
        await daemon.wait_ready()

        async def both_streaming() -> bool:
            streams = (await daemon.statistics()).devices[0].streams
            return {s.stream for s in streams if s.units > 0} >= {"ecg", "acc"}

        await wait_for(both_streaming)
    finally:
        daemon.stop()
        await runner
    with sqlite3.connect(tmp_path / "wgw.sqlite") as db:
        markers = db.execute("SELECT text, participant_id FROM markers ORDER BY id").fetchall()
        rates = dict(
            db.execute(
                "SELECT DISTINCT stream, sample_rate_hz FROM records WHERE kind = 'waveform'"
            )
        )
    ecg = (
        "s1: PMD ecg started: sample_rate_hz=130 resolution_bits=14 channels=1 range=None"
        " factor=1 (config asked sample_rate_hz=250)"
    )
    acc = "s1: PMD acc started: sample_rate_hz=25 resolution_bits=16 channels=3 range=8 factor=1"
    assert markers == [(ecg, "P017"), (acc, "P017")]
    assert rates == {"ecg": 130.0, "acc": 25.0}
