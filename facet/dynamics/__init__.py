"""Compiled loops over many structures: batched FIRE relaxation and jax-md molecular dynamics.

Everything here runs a whole loop inside ``jax.jit`` with static shapes: Verlet neighbour lists
with a skin and a fixed edge capacity (:mod:`facet.batched.neighbors`) are rebuilt outside the
compiled loop only when needed.
"""

from .fire import BatchedFIRE, BatchedRelaxResult, FireConfig, relax_batched
from .pair import MorsePotential, analytic_predict

__all__ = [
    "BatchedFIRE",
    "BatchedRelaxResult",
    "FireConfig",
    "relax_batched",
    "MorsePotential",
    "analytic_predict",
]
