"""``python -m gateway`` is the ``wgw`` command."""

import sys

from gateway.cli import main

sys.exit(main())
