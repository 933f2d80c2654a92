"""Deprecated: ``facet.batched.pair`` moved to :mod:`facet.dynamics.pair`
(re-exported for one release)."""

from facet.deprecation import warn_moved
from facet.dynamics.pair import MorsePotential, PairPredictions, analytic_predict, edge_vectors

__all__ = ["MorsePotential", "PairPredictions", "analytic_predict", "edge_vectors"]

warn_moved(__name__, "facet.dynamics.pair")
