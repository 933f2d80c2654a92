"""Accuracy at equal wall-clock training time, Facet vs MACE: :mod:`facet.bench.accuracy`.

    python scripts/bench_accuracy.py --data data/distill --budget-minutes 120
"""

import sys

from facet.bench.accuracy import (  # noqa: F401 (load_splits, ...: train_default_model)
    load_splits,
    main,
    predict_facet,
    score,
)

if __name__ == "__main__":
    sys.exit(main())
