"""Deprecated: ``facet.batched`` moved to :mod:`facet.dynamics`
(re-exported for one release)."""

from facet.deprecation import warn_moved
from facet.dynamics import (
    BatchedFIRE,
    BatchedRelaxResult,
    FireConfig,
    MorsePotential,
    analytic_predict,
    relax_batched,
)

__all__ = [
    "BatchedFIRE",
    "BatchedRelaxResult",
    "FireConfig",
    "MorsePotential",
    "analytic_predict",
    "relax_batched",
]

warn_moved(__name__, "facet.dynamics")
