"""Training throughput, Facet's trainer vs ``mace_run_train``: :mod:`facet.bench.train_peers`.

    python scripts/bench_train_peers.py --data data/sample/mptrj_sample.json [--quick]
"""

import sys

from facet.bench.train_peers import main, write_mace_extxyz  # noqa: F401 (train_default_model)

if __name__ == "__main__":
    sys.exit(main())
