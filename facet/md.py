"""Deprecated: ``facet.md`` moved to :mod:`facet.dynamics.md`; re-exported for one release."""

from facet.deprecation import warn_moved
from facet.dynamics.ensembles import ENSEMBLES as _ALL
from facet.dynamics.md import MDRun, MDSettings, energy_drift, run_md

__all__ = ["MDRun", "MDSettings", "energy_drift", "run_md", "ENSEMBLES"]

#: The ASE builders of :data:`facet.dynamics.ensembles.ENSEMBLES` (the old table's shape).
ENSEMBLES = {k: e.ase for k, e in _ALL.items() if e.ase is not None}

warn_moved(__name__, "facet.dynamics.md")
