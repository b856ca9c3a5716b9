"""``python -m hub_service.cli``: what the Hub runs (``serve``), and the CLI without its script."""

import sys

from . import main

sys.exit(main())
