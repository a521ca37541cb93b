"""Fixtures that start real services: Mosquitto on a free port, the cloud emulator on loopback."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from aiohttp.test_utils import TestServer

from gateway.emulator.app import EmulatorConfig, emulator_app
from tests.power import Image, loop_mount_impossible
from tests.support import free_port

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

MOSQUITTO = Path("/usr/sbin/mosquitto")


@dataclass
class Broker:
    """A Mosquitto process the test owns; ``restart()`` keeps the port."""

    host: str
    port: int
    conf: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [str(MOSQUITTO), "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        msg = f"mosquitto did not listen on {self.port}"
        raise RuntimeError(msg)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


def make_broker(folder: Path, *, persistent: bool = False) -> Broker:
    """A Mosquitto config on a free port (``persistent``: sessions survive a restart)."""
    if not MOSQUITTO.exists():
        pytest.fail("Mosquitto is missing: `make test` installs the Debian package mosquitto")
    port = free_port()
    conf = folder / "mosquitto.conf"
    user = "user root\n" if os.geteuid() == 0 else ""
    persistence = (
        f"persistence true\npersistence_location {folder}/\nautosave_interval 1\n"
        if persistent
        else "persistence false\n"
    )
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\n{persistence}{user}log_dest none\n"
    )
    return Broker("127.0.0.1", port, conf)


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """A real Mosquitto on 127.0.0.1 and a free port, for the whole session."""
    b = make_broker(tmp_path_factory.mktemp("mosquitto"))
    b.start()
    yield b
    b.stop()


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[Broker]:
    """A persistent Mosquitto this test may stop and start."""
    b = make_broker(tmp_path, persistent=True)
    b.start()
    yield b
    b.stop()


@pytest.fixture
def topic_prefix(request: pytest.FixtureRequest) -> str:
    """A topic prefix unique to the test (aiomqtt's unique_topic idea)."""
    return "t-" + re.sub(r"[^A-Za-z0-9_-]", "-", request.node.name)[:40] + f"-{os.getpid()}"


@pytest.fixture
async def emulator() -> AsyncIterator[TestServer]:
    """The cloud emulator on 127.0.0.1, a free port, in this process."""
    server = TestServer(
        emulator_app(EmulatorConfig(token_ttl_s=3600, plan="enterprise")), host="127.0.0.1"
    )
    await server.start_server()
    yield server
    await server.close()


@pytest.fixture
def image(tmp_path: Path) -> Iterator[Image]:
    """An ext4 image mounted on a loop device (root on Linux; skipped, saying why, elsewhere)."""
    reason = loop_mount_impossible()
    if reason is not None:
        pytest.skip(reason)
    img = Image(tmp_path / "card.img", tmp_path / "card")
    img.make()
    try:
        img.mount_it()
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"a loop mount failed here ({exc.stderr!r}): power cuts cannot be made")
    try:
        yield img
    finally:
        img.discard()
