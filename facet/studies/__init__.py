"""Studies: research runs whose results are reports under docs/, not parts of the library.

The library never imports them. Each runs as ``python -m facet.studies.<name>``:

* :mod:`.sevennet_trim` - SevenNet-0's radial MLPs trimmed to linear maps (teacher environment,
  torch and sevenn; docs/trimming.md, docs/benchmarks/sevennet_trim/);
* :mod:`.chgnet_crosscheck` - the default model against CHGNet, a second teacher
  (docs/benchmarks/accuracy/chgnet_crosscheck.md);
* :mod:`.model_equivariance` - E(3) equivariance of the presets with random weights;
* :mod:`.grid_equivariance` - equivariance error and cost of grid mixing against grid
  resolution (docs/grid_equivariance.png).
"""
