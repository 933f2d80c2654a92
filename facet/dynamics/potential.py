"""A model as a pure function of its state and a batch, for use inside compiled loops.

Every compiled loop here (batched FIRE, jax-md) calls a model through
``predict(model, batch, forces=..., stress=...)`` with the signature of
:func:`facet.physics.predict`, which is the default. Any object following the model contract
(``cutoff``, ``__call__(batch) -> node_energies``) works, e.g.
:class:`facet.batched.pair.MorsePotential` with its :func:`~facet.batched.pair.analytic_predict`.

The model is split once with :func:`flax.nnx.split`; its state is passed to the compiled function
as an argument (not baked in as constants), so one compiled program serves every set of weights
of the same architecture.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flax import nnx

__all__ = ["PredictFn", "default_predict", "split_model"]

PredictFn = Callable[..., Any]


def default_predict() -> PredictFn:
    """:func:`facet.physics.predict` (imported lazily so that this package loads without it)."""
    from ..physics import predict

    return predict


def split_model(model: Any, predict: PredictFn | None = None):
    """``(state, apply)`` with ``apply(state, batch, forces=True, stress=True)`` pure.

    ``apply`` returns whatever ``predict`` returns (``energy``, ``node_energies``, ``forces``,
    ``stress`` fields).
    """
    predict = predict or default_predict()
    graphdef, state = nnx.split(model)

    def apply(state, batch, forces: bool = True, stress: bool = True):
        return predict(nnx.merge(graphdef, state), batch, forces=forces, stress=stress)

    return state, apply
