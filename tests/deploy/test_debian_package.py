"""The Debian package, on this machine (root, as CI runs): built from the wheel, installed with
``dpkg -i``, every path in place, the unit verified, ``wgw`` run as the service user; removed,
which keeps data and config; purged, which takes everything."""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
OPT = Path("/opt/wearable-gateway")
ETC = Path("/etc/wearable-gateway")
STATE = Path("/var/lib/wearable-gateway")
UNIT = Path("/lib/systemd/system/wearable-gateway.service")


def why_not() -> str | None:
    """Why the package cannot be installed here, or None."""
    if os.geteuid() != 0:
        return "installing a package takes root (CI runs as root)"
    for tool in ("dpkg", "dpkg-deb", "systemd-analyze", "runuser", "adduser"):
        if shutil.which(tool) is None:
            return f"{tool} is missing: not a Debian machine"
    venv = subprocess.run(
        ["/usr/bin/python3", "-m", "venv", "-h"], check=False, capture_output=True
    )
    if venv.returncode:
        return "Debian's python3-venv is missing (the package depends on it)"
    return None


def run(*command: str, user: str | None = None) -> str:
    """A command's stdout; it must succeed (its output says why if not)."""
    argv = ["runuser", "-u", user, "--", *command] if user else list(command)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False, cwd="/")
    assert done.returncode == 0, f"{argv}: {done.stdout[-2000:]}{done.stderr[-2000:]}"
    return done.stdout


def installed() -> bool:
    done = subprocess.run(["dpkg", "-s", "wearable-gateway"], capture_output=True, check=False)
    return done.returncode == 0


def mode_owner(path: Path) -> tuple[int, str, str]:
    st = path.stat()
    return st.st_mode & 0o777, pwd.getpwuid(st.st_uid).pw_name, grp.getgrgid(st.st_gid).gr_name


@pytest.mark.timeout(900)
def test_the_package_installs_runs_as_its_user_and_purges(tmp_path: Path) -> None:
    reason = why_not()
    if reason is not None:
        pytest.skip(reason)
    if installed():
        pytest.fail("wearable-gateway is installed on this machine already: purge it first")
    run(sys.executable, "-m", "build", "--wheel", "--outdir", str(tmp_path), str(ROOT))
    (wheel,) = tmp_path.glob("wearable_gateway-*.whl")
    deb = Path(
        run(sys.executable, str(ROOT / "deploy/debian/build.py"), str(wheel), str(tmp_path)).strip()
    )
    try:
        run("dpkg", "-i", str(deb))
        assert (OPT / ".venv/bin/wgw").is_file()
        assert Path("/usr/bin/wgw").resolve() == OPT / ".venv/bin/wgw"
        assert mode_owner(ETC / "config.yaml") == (0o640, "root", "wgw")  # may hold a password
        assert mode_owner(STATE) == (0o750, "wgw", "wgw")
        assert "bluetooth" in run("id", "-nG", "wgw").split()
        assert UNIT.is_file()
        run("systemd-analyze", "verify", str(UNIT))
        assert run("wgw", "--version", user="wgw").strip().startswith("wgw ")
        decoded = run("wgw", "decode", "2a37", "0648", user="wgw")
        assert '"heart_rate_bpm": 72' in decoded
        (STATE / "wgw.sqlite").write_bytes(b"data")  # what a running gateway would have kept
        run("dpkg", "-r", "wearable-gateway")
        assert not (OPT / ".venv").exists() and not Path("/usr/bin/wgw").exists()
        assert (ETC / "config.yaml").is_file() and (STATE / "wgw.sqlite").is_file()  # kept
    finally:
        run("dpkg", "--purge", "wearable-gateway")
    assert not installed()
    for path in (OPT, ETC, STATE, UNIT):
        assert not path.exists(), path
    with pytest.raises(KeyError):
        pwd.getpwnam("wgw")
