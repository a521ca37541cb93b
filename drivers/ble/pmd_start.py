"""Starting a device's PMD streams as polar-ble-sdk does, one command at a time.

What the device offers (the feature read, each stream's settings), the configured settings or
the nearest offered ones, then the start and its answer (the factor).
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import TYPE_CHECKING

from drivers.ble.mtu import unfit_streams
from drivers.errors import DecodeError
from drivers.polar import pmd, pmd_settings

if TYPE_CHECKING:
    import logging

    from bleak import BleakClient
    from bleak.backends.characteristic import BleakGATTCharacteristic


class ControlPoint:
    """The PMD control point's commands and their answers, one at a time.

    The link's decode loop hands every answer to :meth:`answered`; an answer with ``more``
    set continues in the next indication (its parameters after the 5-byte header). A device
    that left one command unanswered is not waited for again on this link (``silent``): its
    commands are written and the start goes on, as before the gateway asked for answers.
    """

    def __init__(self, timeout_s: float) -> None:
        self._timeout_s = timeout_s
        self._lock = asyncio.Lock()
        self._op: int | None = None
        self._parts: list[bytes] = []
        self._waiting: asyncio.Future[pmd.ControlPointResponse] | None = None
        self.silent = False

    def answered(self, response: pmd.ControlPointResponse) -> bool:
        """An answer came: True when a command was waiting for it."""
        waiting = self._waiting
        if waiting is None or waiting.done() or response.op_code != self._op:
            return False
        self._parts.append(response.parameters)
        if not response.more:
            waiting.set_result(dataclasses.replace(response, parameters=b"".join(self._parts)))
        return True

    async def request(
        self, client: BleakClient, char: BleakGATTCharacteristic, command: bytes
    ) -> pmd.ControlPointResponse | None:
        """Write ``command``; its answer, or None when none came in time (or ``silent``).

        Raises:
            BleakError: The write failed (the link is going).
        """
        if self.silent:
            await client.write_gatt_char(char, command)
            return None
        async with self._lock:
            self._op, self._parts = command[0], []
            self._waiting = asyncio.get_running_loop().create_future()
            try:
                await client.write_gatt_char(char, command)
                async with asyncio.timeout(self._timeout_s):
                    return await self._waiting
            except TimeoutError:
                self.silent = True
                return None
            finally:
                self._waiting = None


class PmdStarter:
    """One device's configured PMD streams, started at each connect.

    ``settings`` holds what each stream was last started with (decoding needs it).
    """

    def __init__(
        self,
        device_id: str,
        wanted: tuple[pmd.StreamSettings, ...],
        log: logging.LoggerAdapter[logging.Logger],
        timeout_s: float,
    ) -> None:
        # an unanswered command must leave time for the rest of the connect's budget
        self.control = ControlPoint(min(2.0, timeout_s / 2))
        self.settings = {s.measurement: s for s in wanted}  # as last started (or configured)
        self.not_started: dict[str, str] = {}  # measurement -> why
        self.asked: dict[str, dict[str, int]] = {}  # what config asked that was not offered
        self._started: set[str] = set()
        self._device_id = device_id
        self._wanted = wanted
        self._log = log
        self._told: dict[str, str] = {}  # measurement -> what the log said last
        self._noted: dict[str, str] = {}  # measurement -> the last note of its settings

    async def start(
        self, client: BleakClient, control: BleakGATTCharacteristic, mtu: int | None
    ) -> list[pmd.StreamSettings]:
        """Start every configured stream the device offers and the link's MTU carries.

        Returns:
            The started streams' settings (the nearest offered, the factor the device gave).

        Raises:
            BleakError: A command could not be written (the link is going).
        """
        self.control.silent = False  # a new link: the device gets its chance again
        features = await self._features(client, control)
        chosen: dict[str, pmd.StreamSettings] = {}
        why: dict[str, str] = {}
        for wanted in self._wanted:
            m = wanted.measurement
            if features is not None and m not in features:
                offered = ", ".join(f for f in features if f in pmd.MEASUREMENT_CODES) or "none"
                why[m] = f"the device does not offer it (its PMD streams: {offered})"
                continue
            chosen[m] = await self._choose(client, control, wanted)
        for m, reason in unfit_streams(chosen.values(), mtu).items():
            why[m] = (
                f"{reason} (the device or the adapter will not take a larger MTU; a frame cut"
                " to fit would lose samples)"
            )
        started = []
        for m, asked in chosen.items():
            if m in why:
                continue
            answer = await self.control.request(client, control, pmd.start_command(asked))
            settings = asked
            if answer is not None and not answer.ok:
                if answer.status != pmd.STATUS_ALREADY_IN_STATE:
                    why[m] = f"the device refused the start: {answer.status_name}"
                    continue
            elif answer is not None:
                settings = self._with_factor(asked, answer.parameters)
            self.settings[m] = settings
            self._started.add(m)
            started.append(settings)
            self._told.pop(f"{m}.start", None)  # a later refusal is news again
        for m, reason in why.items():
            self._say(f"{m}.start", "error", f"PMD stream {m} not started: {reason}")
        self.not_started = why
        return started

    def started_json(self) -> dict[str, dict[str, object]]:
        """The streams started (at this or an earlier connect) and their settings."""
        out: dict[str, dict[str, object]] = {}
        for m in sorted(self._started):
            s = self.settings[m]
            out[m] = (
                {}
                if m == "ppi"
                else {
                    "sample_rate_hz": s.sample_rate_hz,
                    "resolution_bits": s.resolution_bits,
                    "channels": s.channels,
                    "range": s.range_,
                    "factor": s.factor,
                    "asked": self.asked.get(m, {}),
                }
            )
        return out

    def news(self, measurement: str) -> str | None:
        """A note of the settings ``measurement`` was started with; None: as last noted.

        A recording's reader needs them: rate, resolution, range, factor.
        """
        s = self.settings[measurement]
        text = f"{self._device_id}: PMD {measurement} started"
        if measurement != "ppi":
            text += (
                f": sample_rate_hz={s.sample_rate_hz} resolution_bits={s.resolution_bits}"
                f" channels={s.channels} range={s.range_} factor={s.factor:g}"
            )
        asked = self.asked.get(measurement)
        if asked:
            text += " (config asked " + " ".join(f"{k}={v}" for k, v in asked.items()) + ")"
        if self._noted.get(measurement) == text:
            return None
        self._noted[measurement] = text
        return text

    async def _features(
        self, client: BleakClient, control: BleakGATTCharacteristic
    ) -> tuple[str, ...] | None:
        """The measurements the device offers; None when it cannot say."""
        if "read" not in control.properties:
            return None
        try:
            return pmd_settings.decode_features(await client.read_gatt_char(control))
        except DecodeError as exc:
            self._say("features", "warning", f"its PMD feature read is unreadable: {exc}")
            return None

    async def _choose(
        self, client: BleakClient, control: BleakGATTCharacteristic, wanted: pmd.StreamSettings
    ) -> pmd.StreamSettings:
        """The configured settings, or the nearest the device offers (said once)."""
        if wanted.measurement == "ppi":  # no settings
            return wanted
        command = bytes([pmd.OP_GET_SETTINGS, pmd.MEASUREMENT_CODES[wanted.measurement]])
        answer = await self.control.request(client, control, command)
        if answer is None or not answer.ok:
            return wanted  # the start will say whether the device takes them
        try:
            offer = pmd_settings.decode_settings(answer.parameters)
        except DecodeError as exc:
            self._say(
                f"{wanted.measurement}.settings", "warning", f"PMD settings unreadable: {exc}"
            )
            return wanted
        choice = pmd_settings.nearest(wanted, offer)
        self.asked[wanted.measurement] = {name: a for name, (a, _) in choice.changed.items()}
        if choice.changed:
            self._say(
                f"{wanted.measurement}.settings",
                "warning",
                f"PMD {wanted.measurement}: the device does not offer the configured settings;"
                f" using the nearest it offers: {choice.describe()}",
            )
        return choice.settings

    def _with_factor(self, settings: pmd.StreamSettings, parameters: bytes) -> pmd.StreamSettings:
        try:
            return pmd_settings.with_factor(settings, parameters)
        except DecodeError as exc:
            self._say(
                f"{settings.measurement}.factor", "warning", f"PMD start answer unreadable: {exc}"
            )
            return settings

    def _say(self, key: str, level: str, message: str) -> None:
        """Log ``message`` unless it is what was said last for ``key`` (not at every connect)."""
        if self._told.get(key) == message:
            return
        self._told[key] = message
        getattr(self._log, level)("%s: %s", self._device_id, message)
