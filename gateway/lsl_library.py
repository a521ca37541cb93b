"""The Lab Streaming Layer binding: pylsl, or mne-lsl's where pylsl cannot load a liblsl.

pip offers pylsl on a Raspberry Pi (aarch64) without liblsl, while mne-lsl's wheel bundles
one; the two APIs differ in a few calls, which :class:`LslLibrary` makes alike.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

INSTALL: str = "pip install 'wearable-gateway[lsl]' (on a Raspberry Pi see docs/lsl.md)"


class LslUnavailableError(ImportError):
    """Neither binding loads: the message says why for each."""


@dataclass(frozen=True, slots=True)
class LslLibrary:
    """The calls the gateway makes, on pylsl or on ``mne_lsl.lsl``."""

    module: Any
    version: str  # "pylsl 1.18.6, liblsl 1.18"
    mne: bool  # mne-lsl's API: ``desc`` a property, resolve by keyword
    passed_over: str = ""  # why pylsl was not used, when it was not

    def local_clock(self) -> float:
        """LSL's clock (CLOCK_MONOTONIC on Linux), in seconds."""
        now: float = self.module.local_clock()
        return now

    def stream_info(
        self,
        name: str,
        stream_type: str,
        *,
        channels: int,
        rate_hz: float,
        channel_format: str,
        source_id: str,
    ) -> tuple[Any, Any]:
        """A stream's declaration, and its description element to fill.

        ``channel_format``: ``"int32"``, ``"float32"`` or ``"string"`` (both take the name).
        """
        info = self.module.StreamInfo(
            name, stream_type, channels, rate_hz, channel_format, source_id
        )
        return info, info.desc if self.mne else info.desc()

    def outlet(self, info: Any) -> Any:
        """An outlet of the stream ``info`` declares.

        ``push_sample`` and ``push_chunk`` take numpy arrays on both, strings as a list.
        """
        return self.module.StreamOutlet(info)

    def resolve(self, name: str, timeout_s: float) -> list[Any]:
        """The streams named ``name`` on the network (blocks up to ``timeout_s``)."""
        if self.mne:
            found: list[Any] = self.module.resolve_streams(timeout_s, name=name, minimum=1)
        else:
            found = self.module.resolve_byprop("name", name, 1, timeout_s)
        return found

    def inlet(self, info: Any) -> Any:
        """An inlet of a resolved stream.

        ``pull_sample(timeout)`` gives ``(sample, stamp)``: an empty or None sample when
        nothing came; RuntimeError when the source went.
        """
        return self.module.StreamInlet(info)


@functools.cache
def load() -> LslLibrary:
    """pylsl, else mne-lsl's binding (each with its liblsl).

    Raises:
        LslUnavailableError: neither loads; says why for each and what to install.
    """
    reasons: list[str] = []
    try:
        import pylsl  # noqa: PLC0415 - an optional extra, imported only when LSL is on
    except (ImportError, RuntimeError, OSError) as e:  # RuntimeError: no liblsl found
        reasons.append(f"pylsl: {_first_line(e)}")
    else:
        return LslLibrary(pylsl, f"pylsl {pylsl.__version__}, {_liblsl(pylsl)}", mne=False)
    try:
        import mne_lsl  # noqa: PLC0415 - the fallback, where pylsl found no liblsl
        from mne_lsl import lsl  # noqa: PLC0415
    except (ImportError, RuntimeError, OSError) as e:
        reasons.append(f"mne-lsl: {_first_line(e)}")
    else:
        version = f"mne-lsl {mne_lsl.__version__}, {_liblsl(lsl)}"
        return LslLibrary(lsl, version, mne=True, passed_over=reasons[0])
    raise LslUnavailableError(f"{INSTALL}; {'; '.join(reasons)}")


def _liblsl(module: Any) -> str:
    version: int = module.library_version()
    return f"liblsl {version // 100}.{version % 100}"


def _first_line(error: BaseException) -> str:
    text = " ".join(str(part) for part in error.args) if error.args else type(error).__name__
    return text.strip().splitlines()[0] if text.strip() else type(error).__name__
