"""The BlueZ check's host side: boot a Debian kernel under qemu with this machine's files as its
root (read-only, over 9p, with a tmpfs on top), run ``tests.bluez.guest`` there, report.

``python -m tests.bluez.vm`` (``make bluez-check``, which installs qemu, the kernel, BlueZ and
busybox first). Needs root. KVM hung at boot on this project's machines, so the VM is emulated
(TCG): about 10 s to boot, Python a few times slower than on the host. Exits 0 when every
check held; the VM's logs stay in the directory it names.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHARE = "security_model=none"  # files keep the host's owners and modes (we are root)
# the initramfs mounts the host's root over virtio 9p with an overlay on a tmpfs
MODULES = (
    "drivers/virtio/virtio_ring",
    "drivers/virtio/virtio",
    "drivers/virtio/virtio_pci_legacy_dev",
    "drivers/virtio/virtio_pci_modern_dev",
    "drivers/virtio/virtio_pci",
    "net/9p/9pnet",
    "net/9p/9pnet_virtio",
    "fs/netfs/netfs",
    "fs/fscache/fscache",
    "fs/9p/9p",
    "fs/overlayfs/overlay",
)
INIT = """#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in {modules}; do insmod /mods/$m.ko || echo "insmod $m failed"; done
mkdir -p /lower /upper /newroot
mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose host /lower
mount -t tmpfs tmpfs /upper
mkdir -p /upper/u /upper/w
mount -t overlay overlay -o lowerdir=/lower,upperdir=/upper/u,workdir=/upper/w /newroot
mkdir -p /newroot/out
mount -t 9p -o trans=virtio,version=9p2000.L out /newroot/out
mount --move /proc /newroot/proc; mount --move /sys /newroot/sys; mount --move /dev /newroot/dev
exec switch_root /newroot /bin/sh /out/guest.sh
"""
# run as the VM's init: what a Debian system with BlueZ would have running, then the check;
# when it returns, init ends and the kernel's panic stops the VM (-no-reboot)
GUEST = """#!/bin/sh
exec > /out/guest.log 2>&1
mount -t tmpfs tmpfs /run; mount -t tmpfs tmpfs /tmp; mount -t tmpfs tmpfs /var/lib/bluetooth
mkdir -p /run/dbus /tmp/wgw
ip link set lo up
modprobe hci_vhci
dbus-daemon --system --fork --nopidfile
/usr/libexec/bluetooth/bluetoothd -n -d > /out/bluetoothd.log 2>&1 &
cd {root}
{python} -m tests.bluez.guest /out /tmp/wgw
sync
"""


def kernel() -> tuple[Path, Path]:
    """Debian's kernel image and its modules (the newest with the virtual HCI driver)."""
    for modules in sorted(Path("/lib/modules").glob("*-amd64"), reverse=True):
        image = Path("/boot") / f"vmlinuz-{modules.name}"
        if image.exists() and list(modules.rglob("hci_vhci.ko*")):
            return image, modules
    sys.exit("no Debian kernel with hci_vhci: apt-get install linux-image-amd64")


def initramfs(modules: Path, into: Path) -> Path:
    """busybox, the modules for a 9p root, and an init that switches to it."""
    tree = into / "initramfs"
    for folder in ("bin", "mods", "proc", "sys", "dev"):
        (tree / folder).mkdir(parents=True)
    busybox = shutil.which("busybox")
    if busybox is None:
        sys.exit("no busybox: apt-get install busybox-static")
    shutil.copy(busybox, tree / "bin" / "busybox")
    for module in MODULES:
        shutil.copy(modules / "kernel" / f"{module}.ko", tree / "mods")
    init = tree / "init"
    init.write_text(INIT.format(modules=" ".join(Path(m).name for m in MODULES)))
    init.chmod(0o755)
    listing = subprocess.run(
        ["find", "."], cwd=tree, capture_output=True, check=True
    ).stdout  # fmt: skip
    archive = subprocess.run(
        ["cpio", "-o", "-H", "newc"], cwd=tree, input=listing, capture_output=True, check=True
    ).stdout
    image = into / "initramfs.gz"
    image.write_bytes(gzip.compress(archive))
    return image


def main() -> None:
    image, modules = kernel()
    logs = Path(tempfile.mkdtemp(prefix="wgw-bluez-check-"))
    with tempfile.TemporaryDirectory() as tmp:
        initrd = initramfs(modules, Path(tmp))
        guest = logs / "guest.sh"
        guest.write_text(GUEST.format(root=ROOT, python=sys.executable))
        command = [
            "qemu-system-x86_64", "-machine", "q35,accel=tcg", "-cpu", "max", "-m", "2048",
            "-smp", "2", "-nographic", "-no-reboot",
            "-kernel", str(image), "-initrd", str(initrd),
            "-append", "console=ttyS0 panic=-1 quiet",
            "-virtfs", f"local,path=/,mount_tag=host,{SHARE},readonly=on,multidevs=remap",
            "-virtfs", f"local,path={logs},mount_tag=out,{SHARE}",
        ]  # fmt: skip
        with (logs / "console.log").open("wb") as console:
            subprocess.run(command, stdout=console, stderr=console, timeout=900, check=False)
    found = logs / "result.json"
    result = json.loads(found.read_text()) if found.exists() else {"ok": False}
    print(json.dumps(result, indent=1))
    print(f"logs: {logs}")
    sys.exit(0 if result.get("ok") else 1)


if __name__ == "__main__":
    if os.geteuid() != 0:
        sys.exit("the BlueZ check boots a VM with this machine's root: run it as root")
    main()
