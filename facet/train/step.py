"""The jitted training and evaluation steps (functional style over ``nnx.split``).

The model is split once into ``graphdef`` (static structure), ``params`` (the ``nnx.Param``
leaves the optimiser updates) and ``rest`` (everything else: the fitted E0s in
``facet.nn.AtomicEnergies``, which the optimiser must not touch). A step takes a *global* batch
with a leading device axis ``D`` (one padded :class:`~facet.data.GraphBatch` per device), maps the
model over it with ``jax.vmap``, and reduces the loss as sums and counts over all devices
(:mod:`facet.train.loss`). Under ``jax.jit`` with the batch sharded along ``D`` and the
parameters replicated, XLA partitions the map over devices and inserts the all-reduce of the
sums and of the gradients, so a data-parallel step equals a single-device step on the union of
the batches (Goyal et al. 2017 "large minibatch SGD": the loss is normalised by the global
count, not averaged per device).

NaN/inf guard: when the loss or the gradient norm is not finite the state is returned unchanged
(``ok = False`` in the metrics); the loop stops with a message and the last good checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from ..model_io import split_model
from .loss import combine_loss, error_sums, loss_sums
from .optim import ema_update

__all__ = [
    "TrainState",
    "split_model",
    "init_state",
    "make_loss_fn",
    "make_step_fns",
    "default_predict",
]


class TrainState(NamedTuple):
    """Everything that changes during training (and is checkpointed).

    Attributes:
        step: int32 scalar, optimiser steps taken.
        params: ``nnx.State`` of the model's ``nnx.Param`` leaves.
        opt_state: the optax state.
        ema: exponential moving average of ``params`` (used for validation and export).
        rng: uint32 ``(2,)`` PRNG key, split once per step (for stochastic models).
    """

    step: Any
    params: Any
    opt_state: Any
    ema: Any
    rng: Any


def init_state(params, tx: optax.GradientTransformation, seed: int = 0) -> TrainState:
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        opt_state=tx.init(params),
        ema=jax.tree.map(jnp.copy, params),
        rng=jax.random.PRNGKey(seed),
    )


def default_predict():
    """``facet.physics.predict``, imported lazily so that this module has no model dependency."""
    from facet.physics import predict

    return predict


def _tree_sum0(tree):
    return jax.tree.map(lambda x: jnp.sum(x, axis=0), tree)


def make_loss_fn(graphdef, loss_cfg, *, forces: bool = True, stress: bool = True,
                 predict_fn: Callable | None = None):
    """``(loss_fn, outputs)``: ``loss_fn(params, rest, batch) -> (loss, error sums)`` and
    ``outputs(params, rest, batch) -> (loss sums, error sums)`` over a batch with a leading
    device axis (sums over all devices)."""
    predict = predict_fn or default_predict()

    def outputs(params, rest, batch):
        def one(b):
            model = nnx.merge(graphdef, params, rest)
            pred = predict(model, b, forces=forces, stress=stress)
            return loss_sums(pred, b, loss_cfg), error_sums(pred, b)

        sums, errs = jax.vmap(one)(batch)
        return _tree_sum0(sums), _tree_sum0(errs)

    def loss_fn(params, rest, batch):
        sums, errs = outputs(params, rest, batch)
        return combine_loss(sums, loss_cfg), errs

    return loss_fn, outputs


def make_step_fns(graphdef, tx: optax.GradientTransformation, loss_cfg, *, ema_decay: float,
                  forces: bool = True, stress: bool = True,
                  predict_fn: Callable | None = None):
    """``(train_step, eval_step)``, pure functions to be wrapped in ``jax.jit`` by the caller.

    ``train_step(state, rest, batch) -> (state, metrics)`` and
    ``eval_step(params, rest, batch) -> (loss sums, error sums)``; ``batch`` has a leading
    device axis. ``metrics`` holds ``loss``, ``grad_norm``, ``ok`` and the training error sums.
    """
    loss_fn, outputs = make_loss_fn(graphdef, loss_cfg, forces=forces, stress=stress,
                                    predict_fn=predict_fn)

    def train_step(state: TrainState, rest, batch):
        (loss, errs), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params, rest, batch)
        gnorm = optax.global_norm(grads)
        ok = jnp.isfinite(loss) & jnp.isfinite(gnorm)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        rng, _ = jax.random.split(state.rng)
        new = TrainState(state.step + 1, params, opt_state,
                         ema_update(state.ema, params, ema_decay, state.step), rng)
        new = jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, state)
        return new, {"loss": loss, "grad_norm": gnorm, "ok": ok, **errs}

    def eval_step(params, rest, batch):
        return outputs(params, rest, batch)

    return train_step, eval_step
