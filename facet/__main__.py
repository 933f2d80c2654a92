"""``python -m facet ...``: the same as the ``facet`` console script (useful where the package is
on ``PYTHONPATH`` but not installed)."""

import sys

from facet.cli import main

sys.exit(main())
