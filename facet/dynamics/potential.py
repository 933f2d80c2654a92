"""A model as a pure function of its state and a batch, for use inside compiled loops.

Every compiled loop here (batched FIRE, jax-md) calls a model through
``predict(model, batch, forces=..., stress=...)`` with the signature of
:func:`facet.physics.predict`, which is the default. Any object following the model contract
(``cutoff``, ``__call__(batch) -> node_energies``) works, e.g.
:class:`facet.dynamics.pair.MorsePotential` with its :func:`~facet.dynamics.pair.analytic_predict`.

The model is split once (:func:`facet.model_io.split_model`); its state is passed to the compiled
function as an argument (not baked in as constants), so one compiled program serves every set
of weights of the same architecture.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from flax import nnx

from ..elements import check_supported
from ..errors import InputError
from ..model_io import split_model
from ..physics import predict as physics_predict

__all__ = ["PredictFn", "pure_predict", "check_structures"]

PredictFn = Callable[..., Any]


def pure_predict(model: Any, predict: PredictFn | None = None):
    """``(state, apply)`` with ``apply(state, batch, forces=True, stress=True)`` pure.

    ``predict`` is :func:`facet.physics.predict` unless given; ``apply`` returns whatever it
    returns (``energy``, ``node_energies``, ``forces``, ``stress`` fields). ``state`` is the
    pair ``(params, rest)`` of :func:`facet.model_io.split_model`.
    """
    predict = predict or physics_predict
    graphdef, params, rest = split_model(model)

    def apply(state, batch, forces: bool = True, stress: bool = True):
        return predict(nnx.merge(graphdef, *state), batch, forces=forces, stress=stress)

    return (params, rest), apply


def check_structures(model: Any, atoms: Sequence[Any]) -> None:
    """Refuse, with one line naming the structure, an empty structure, an element ``model``
    does not support (:func:`facet.elements.check_supported`) or NaN/inf positions."""
    for k, a in enumerate(atoms):
        where = f"structure {k} ({a.get_chemical_formula()})"
        if len(a) == 0:
            raise InputError(f"{where}: the structure has no atoms")
        check_supported(model, a.numbers, where)
        if not np.all(np.isfinite(a.positions)):
            raise InputError(f"{where}: NaN/inf positions")
