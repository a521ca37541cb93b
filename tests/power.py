"""Real power cuts for tests: an ext4 image on a loop device, cut with the kernel's shutdown ioctl.

``FS_IOC_SHUTDOWN`` with ``NOLOGFLUSH`` makes every later read and write of the filesystem fail
with EIO and lets nothing more reach the image, not even the journal: what the card holds is
what a cut at that moment leaves. Unmounting and mounting again replays the journal.
"""

from __future__ import annotations

import fcntl
import os
import signal
import struct
import subprocess
import sys
import threading
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pytest

if TYPE_CHECKING:
    from types import FrameType

FS_IOC_SHUTDOWN: Final = 0x8004587D  # _IOR('X', 125, __u32)
SHUTDOWN_NOLOGFLUSH: Final = 2


def cut_power(mount: Path) -> None:
    """The kernel's shutdown ioctl: from now on every read and write under ``mount`` fails."""
    fd = os.open(mount, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.ioctl(fd, FS_IOC_SHUTDOWN, struct.pack("I", SHUTDOWN_NOLOGFLUSH))
    finally:
        os.close(fd)


class Cutter:
    """A profile hook that cuts the power at the NTH time the code reaches a moment.

    The moment is a function and what happens in it: ``call`` (it starts), ``return`` (it
    ends), or another name (just before it calls a function of that name). Then the power goes,
    ``CUT`` is written to stdout and the process kills itself (SIGKILL): the code runs
    unchanged, only watched.
    """

    def __init__(self, mount: Path, function: Any, event: str, nth: int) -> None:
        self.code = function.__code__
        self.event = event
        self.mount = mount
        self.left = nth

    def hook(self, frame: FrameType, event: str, arg: object) -> None:
        if event in {"call", "return"} and event == self.event:
            hit = frame.f_code is self.code
        elif event == "call":  # a Python function of that name called from the target
            caller = frame.f_back
            hit = frame.f_code.co_name == self.event and caller is not None
            hit = hit and caller is not None and caller.f_code is self.code
        elif event == "c_call":
            hit = frame.f_code is self.code and getattr(arg, "__name__", None) == self.event
        else:
            return
        if not hit:
            return
        self.left -= 1
        if self.left == 0:
            cut_power(self.mount)
            os.write(1, b"CUT\n")
            os.kill(os.getpid(), signal.SIGKILL)

    def install(self) -> None:
        sys.setprofile(self.hook)
        threading.setprofile(self.hook)  # to_thread's workers: fsyncs, replays, removals


def loop_mount_impossible() -> str | None:
    """Why a loop mount cannot work here, or None."""
    if sys.platform != "linux":
        return "power cuts need Linux's loop devices and FS_IOC_SHUTDOWN"
    if os.geteuid() != 0:
        return "power cuts mount a loop device: run as root (CI does)"
    if not Path("/dev/loop-control").exists():
        return "no /dev/loop-control: this kernel or container has no loop devices"
    return None


@dataclass
class Image:
    """An ext4 filesystem in a file, mounted through a loop device of its own with a one-second
    journal commit.
    """

    file: Path
    mount: Path
    device: str | None = None

    def make(self, size_mb: int = 96) -> None:
        self.file.unlink(missing_ok=True)
        with self.file.open("wb") as f:
            f.truncate(size_mb << 20)
        subprocess.run(["mkfs.ext4", "-q", "-F", str(self.file)], check=True)

    def mount_it(self) -> None:
        """Mount through a new loop device (never one a cut filesystem still holds)."""
        self.mount.mkdir(exist_ok=True)
        found = subprocess.run(
            ["losetup", "-f", "--show", str(self.file)], check=True, capture_output=True, text=True
        )
        self.device = found.stdout.strip()
        try:
            subprocess.run(
                ["mount", "-t", "ext4", "-o", "commit=1", self.device, str(self.mount)],
                check=True,
                capture_output=True,
            )
        except subprocess.CalledProcessError:
            self.detach()
            raise

    def unmount(self) -> None:
        """Unmount; a process just killed may hold the mount a moment longer (its exit)."""
        deadline = time.monotonic() + 10
        while (
            done := subprocess.run(["umount", str(self.mount)], check=False, capture_output=True)
        ).returncode:
            if time.monotonic() > deadline:
                pytest.fail(
                    f"cannot unmount {self.mount}: {done.stderr.decode()} {holders(self.mount)}"
                )
            time.sleep(0.05)
        self.detach()

    def swap_card(self) -> None:
        """After a cut, with a process still holding the dead filesystem: detach it lazily and
        mount the image again beside it (as an operator remounting a card would).
        """
        subprocess.run(["umount", "-l", str(self.mount)], check=True)
        subprocess.run(["losetup", "-d", str(self.device)], check=False, capture_output=True)
        self.mount_it()

    def detach(self) -> None:
        if self.device is not None:
            # autoclear: the device goes once the last holder of the dead filesystem closes
            subprocess.run(["losetup", "-d", self.device], check=False, capture_output=True)
            self.device = None

    def discard(self) -> None:
        """The test is over: lazily, whatever still holds it."""
        subprocess.run(["umount", "-l", str(self.mount)], check=False, capture_output=True)
        self.detach()


def holders(mount: Path) -> list[str]:
    """The processes with a file open or mapped under ``mount`` (for a failure's message)."""
    found: list[str] = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        targets: list[str] = []
        with suppress(OSError):
            targets += [str(fd.readlink()) for fd in (proc / "fd").iterdir()]
        with suppress(OSError):
            targets += (proc / "maps").read_text().split()
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        found += {f"{proc.name} {cmd[:80]}: {t}" for t in targets if t.startswith(str(mount))}
    return found
