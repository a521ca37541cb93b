"""Build the Debian package from the project's wheel: ``python deploy/debian/build.py WHEEL OUT``.

The stdlib and ``dpkg-deb`` only. The package is ``Architecture: all``: it carries the
gateway's own wheel (pure Python), and its postinst builds the venv under
``/opt/wearable-gateway`` with the target's Python, taking numpy, scipy and the other compiled
dependencies for that machine's architecture from the package registry (PyPI). One package
serves a Pi (arm64) and an x86 box alike; installing it needs the registry reachable.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
NAME = "wearable-gateway"
OPT = Path("opt") / NAME


def version() -> str:
    """The project's version, from pyproject.toml."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return str(project["project"]["version"])


def control(ver: str, installed_kib: int) -> str:
    """The package's DEBIAN/control."""
    return f"""Package: {NAME}
Version: {ver}
Architecture: all
Maintainer: wearable-gateway developers <wearable-gateway@localhost>
Installed-Size: {installed_kib}
Depends: python3 (>= 3.11), python3-venv, adduser
Recommends: bluez, mosquitto
Section: net
Priority: optional
Description: BLE wearables to MQTT and cloud health APIs, through a durable outbox
 An async edge daemon for a Raspberry Pi or a Linux phone: connects to watches and chest
 straps over Bluetooth Low Energy, keeps every sample in an offline SQLite outbox, publishes
 live data to MQTT and syncs to a health-record API. Its venv is built at install time from
 the bundled wheel and the package registry.
"""


def build(wheel: Path, out: Path) -> Path:
    """The .deb for ``wheel``, written into ``out``."""
    ver = version()
    with tempfile.TemporaryDirectory(prefix="wgw-deb-") as tmp:
        tree = Path(tmp) / NAME
        wheels = tree / OPT / "wheels"
        wheels.mkdir(parents=True)
        shutil.copy2(wheel, wheels / wheel.name)
        etc = tree / "etc" / NAME
        etc.mkdir(parents=True)
        shutil.copy2(ROOT / "config.example.yaml", etc / "config.yaml")
        units = tree / "lib" / "systemd" / "system"
        units.mkdir(parents=True)
        shutil.copy2(ROOT / "systemd" / f"{NAME}.service", units / f"{NAME}.service")
        bin_dir = tree / "usr" / "bin"
        bin_dir.mkdir(parents=True)
        (bin_dir / "wgw").symlink_to(f"/{OPT}/.venv/bin/wgw")  # the venv comes with postinst
        docs = tree / "usr" / "share" / "doc" / NAME
        docs.mkdir(parents=True)
        for doc in ("README.md", "docs/raspberry-pi.md", "docs/phone-hub.md", "docs/mqtt.md"):
            shutil.copy2(ROOT / doc, docs / Path(doc).name)
        debian = tree / "DEBIAN"
        debian.mkdir()
        size_kib = sum(f.stat().st_size for f in tree.rglob("*") if f.is_file()) // 1024 + 1
        (debian / "control").write_text(control(ver, size_kib), encoding="utf-8")
        (debian / "conffiles").write_text(f"/etc/{NAME}/config.yaml\n", encoding="utf-8")
        for script in ("postinst", "prerm", "postrm"):
            target = debian / script
            shutil.copy2(HERE / script, target)
            target.chmod(0o755)
        out.mkdir(parents=True, exist_ok=True)
        deb = out / f"{NAME}_{ver}_all.deb"
        subprocess.run(
            ["dpkg-deb", "--root-owner-group", "--build", str(tree), str(deb)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return deb


def main() -> int:
    """Build it; 1 without dpkg-deb."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheel", type=Path, help="the project's wheel (make dist)")
    parser.add_argument("out", type=Path, help="folder for the .deb")
    args = parser.parse_args()
    if shutil.which("dpkg-deb") is None:
        print("error: dpkg-deb is missing (Debian's dpkg package)", file=sys.stderr)
        return 1
    print(build(args.wheel, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
