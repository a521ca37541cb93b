"""``wgw run`` watched for a power cut: ``python -m tests.gateway.cut_daemon CONFIG MOUNT NTH``.

The power goes (the shutdown ioctl on MOUNT) as the NTH record of a backfill transfer arrives
(``Transfer.record``); the daemon itself runs unchanged.
"""

from __future__ import annotations

import sys
from pathlib import Path

from drivers.ble.backfill import Transfer
from gateway.cli.entry import main
from tests.power import Cutter

if __name__ == "__main__":
    config, mount, nth = sys.argv[1:4]
    Cutter(Path(mount), Transfer.record, "call", int(nth)).install()
    sys.exit(main(["run", "--config", config]))
