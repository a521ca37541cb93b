"""``python -m gateway`` is the ``wgw`` command."""

import sys

from gateway.cli.entry import main

sys.exit(main())
