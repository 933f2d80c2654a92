"""Runner scripts of the peer benchmarks: each file runs by its path under a peer's own Python.

``run_*.py`` serve :mod:`facet.bench.dynamics` (one long-lived process per model, the JSON-lines
protocol of ``_protocol.py``, imported as the script's sibling since the peers' environments do
not have Facet); ``mace_train.py`` drives ``mace_run_train`` for :mod:`facet.bench.train_peers`
and :mod:`facet.bench.accuracy`, which also import it. They ship with the package, so an
installed Facet runs them without a source checkout.
"""
