"""Time to accuracy, Facet vs MACE's own trainer: :mod:`facet.bench.time_to_accuracy`.

    python scripts/bench_time_to_accuracy.py prepare --data runs/default2 --work <work>
"""

import sys

from facet.bench.time_to_accuracy import main

if __name__ == "__main__":
    sys.exit(main())
