"""Deprecated: ``facet.batched.fire`` moved to :mod:`facet.dynamics.fire`
(re-exported for one release)."""

from facet.deprecation import warn_moved
from facet.dynamics.fire import (
    BatchedFIRE,
    BatchedRelaxResult,
    FireConfig,
    FireState,
    relax_batched,
)

__all__ = ["BatchedFIRE", "BatchedRelaxResult", "FireConfig", "FireState", "relax_batched"]

warn_moved(__name__, "facet.dynamics.fire")
