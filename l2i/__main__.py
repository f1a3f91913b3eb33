"""``python -m l2i``: the command line (:mod:`l2i.cli`)."""

import sys

from .cli import main

sys.exit(main())
