"""``facet bench``: benchmark selections, their reports and the summary page.

* :mod:`facet.bench.meta` - versions, hardware (CPU model, JAX device kind), load average;
* :mod:`facet.bench.common` - output folders (full vs ``quick/``), JSON rows, tables, plots;
* :mod:`facet.bench.model` - presets: throughput, compile time, cost split (``model``);
* :mod:`facet.bench.scaling` / :mod:`facet.bench.scaling_report` - cost vs size, channels, L;
  FLOP rate against a large matrix product (``scaling``);
* :mod:`facet.bench.dynamics` with :mod:`facet.bench.dynamics_report` - MD and relaxation speed
  against the peers (``md``, ``relax``), each model in its own process
  (:mod:`facet.bench.peers`);
* :mod:`facet.bench.train_peers` (with :mod:`facet.bench.train_throughput`) - training
  throughput against ``mace_run_train`` (``train``); :mod:`facet.bench.accuracy` - accuracy at
  equal training time (``accuracy``);
* :mod:`facet.bench.wrapped` - runs ``model``, ``train`` and ``accuracy`` as ``python -m`` in
  their own process and renders their JSON (:mod:`facet.bench.wrapped_report`);
* :mod:`facet.bench.summary` - ``docs/benchmarks/README.md`` from every report's JSON;
  :mod:`facet.bench.run_all` - ``facet bench all``.

The command line (``facet/cli/bench.py``) only parses arguments and calls these. The tensor
products have their own benchmark beside them: :mod:`tensorproducts.bench`.
"""
