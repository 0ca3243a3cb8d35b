"""``python -m snnc.cli``."""

import sys

from snnc.cli import main

sys.exit(main())
