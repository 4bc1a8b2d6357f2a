"""``python -m feeders`` is the ``feeders`` command."""

import sys

from feeders.cli import main

sys.exit(main())
