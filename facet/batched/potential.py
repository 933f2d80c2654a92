"""Deprecated: ``facet.batched.potential`` moved to :mod:`facet.dynamics.potential`
(re-exported for one release)."""

from facet.deprecation import warn_moved
from facet.dynamics.potential import PredictFn
from facet.dynamics.potential import pure_predict as split_model
from facet.physics import predict as _predict

__all__ = ["PredictFn", "split_model", "default_predict"]


def default_predict():
    """:func:`facet.physics.predict`, the default of ``pure_predict``."""
    return _predict


warn_moved(__name__, "facet.dynamics.potential")
