"""Deprecated: ``facet.batched.md`` moved to :mod:`facet.dynamics.jaxmd`
(re-exported for one release)."""

from facet.deprecation import warn_moved
from facet.dynamics.ensembles import ENSEMBLES as _ALL
from facet.dynamics.jaxmd import JaxMD, JaxMDConfig, JaxMDResult, run_jax_md

__all__ = ["JaxMD", "JaxMDConfig", "JaxMDResult", "run_jax_md", "ENSEMBLES"]

#: The jax-md builders of :data:`facet.dynamics.ensembles.ENSEMBLES` (the old table's shape).
ENSEMBLES = {k: e.jax_md for k, e in _ALL.items() if e.jax_md is not None}

warn_moved(__name__, "facet.dynamics.jaxmd")
