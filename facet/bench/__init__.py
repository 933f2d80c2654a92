"""``facet bench``: benchmark selections, their reports and the summary page.

* :mod:`facet.bench.meta` - versions, hardware (CPU model, JAX device kind), load average;
* :mod:`facet.bench.common` - output folders (full vs ``quick/``), JSON rows, tables, plots;
* :mod:`facet.bench.scaling` / :mod:`facet.bench.scaling_report` - cost vs size, channels, L;
  FLOP rate against a large matrix product;
* :mod:`facet.bench.wrapped` - the ``model``, ``train`` and ``accuracy`` selections, which run
  the stand-alone scripts in ``scripts/`` and render their JSON;
* :mod:`facet.bench.summary` - ``docs/benchmarks/README.md`` from every report's JSON.

The command line (``facet/cli/bench.py``) only parses arguments and calls these.
"""
