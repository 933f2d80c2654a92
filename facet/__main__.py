import sys

from facet.cli import main

sys.exit(main())
