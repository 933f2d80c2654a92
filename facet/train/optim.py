"""Optimisers, learning-rate schedules and the exponential moving average of the weights.

The update is ``clip_by_global_norm(clip_norm)`` followed by the optimiser, whose learning rate
follows a linear warm-up from 0 to ``lr`` over ``warmup_steps`` and then a decay to
``lr * final_lr_factor`` at ``total_steps`` (cosine: Loshchilov & Hutter, "SGDR", ICLR 2017;
``wsd``, warm-up-stable-decay: constant ``lr`` and a linear decay over only the last
``decay_steps``, for long jobs whose length is not known in advance, since a resumed run may
lengthen ``run.max_steps`` during the flat phase without changing any step so far; Hu et al.,
"MiniCPM", 2024; Hägele et al., "Scaling laws and compute-optimal training beyond fixed
training durations", NeurIPS 2024. AdamW: Loshchilov & Hutter, "Decoupled weight decay
regularization", ICLR 2019). Weight decay is applied to matrices only (``ndim >= 2``), not
to per-element vectors such as scale and shift.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

__all__ = ["SCHEDULES", "OPTIMIZERS", "make_schedule", "make_optimizer", "ema_update"]


def _cosine(lr: float, final: float, steps: int):
    return optax.cosine_decay_schedule(lr, max(steps, 1), alpha=final)


def _linear(lr: float, final: float, steps: int):
    return optax.linear_schedule(lr, lr * final, max(steps, 1))


def _constant(lr: float, final: float, steps: int):
    return optax.constant_schedule(lr)


def _wsd(lr: float, final: float, steps: int, decay_steps: int = 0):
    decay = min(decay_steps, steps) if decay_steps > 0 else max(steps // 5, 1)
    flat = steps - decay
    tail = optax.linear_schedule(lr, lr * final, max(decay, 1))
    if flat <= 0:
        return tail
    return optax.join_schedules([optax.constant_schedule(lr), tail], [flat])


SCHEDULES: dict[str, Callable] = {"cosine": _cosine, "linear": _linear, "constant": _constant,
                                  "wsd": _wsd}


def make_schedule(cfg, total_steps: int) -> optax.Schedule:
    """Warm-up then decay; ``cfg`` is a :class:`facet.train.config.OptimSection`."""
    warm = min(cfg.warmup_steps, max(total_steps - 1, 0))
    if cfg.schedule == "wsd":
        decay = _wsd(cfg.lr, cfg.final_lr_factor, total_steps - warm, cfg.decay_steps)
    else:
        decay = SCHEDULES[cfg.schedule](cfg.lr, cfg.final_lr_factor, total_steps - warm)
    if warm == 0:
        return decay
    # Start the warm-up at lr/warm, not 0, so that step 0 already moves the weights.
    ramp = optax.linear_schedule(cfg.lr / (warm + 1), cfg.lr, warm)
    return optax.join_schedules([ramp, decay], [warm])


def _decay_mask(params):
    return jax.tree.map(lambda p: jnp.ndim(p) >= 2, params)


def _adamw(cfg, lr):
    return optax.adamw(lr, cfg.b1, cfg.b2, cfg.eps, weight_decay=cfg.weight_decay,
                       mask=_decay_mask)


def _adam(cfg, lr):
    return optax.adam(lr, cfg.b1, cfg.b2, cfg.eps)


def _sgd(cfg, lr):
    return optax.sgd(lr, momentum=cfg.b1, nesterov=True)


OPTIMIZERS: dict[str, Callable] = {"adamw": _adamw, "adam": _adam, "sgd": _sgd}


FROZEN = ("scale", "shift")


def _frozen_mask(params):
    """True for the model's top-level per-element ``scale`` and ``shift``."""
    def frozen(path, _):
        key = getattr(path[0], "key", None) if path else None
        return key in FROZEN and len(path) <= 2  # ``['scale']`` or ``['scale'].value``
    return jax.tree_util.tree_map_with_path(frozen, params)


def make_optimizer(cfg, total_steps: int) -> optax.GradientTransformation:
    """``clip_by_global_norm`` then the named optimiser on the scheduled learning rate.

    Unless ``cfg.train_scale_shift``, the per-element ``scale`` and ``shift`` fitted before
    training get zero updates (MACE's and NequIP's default: the energy scale and the
    references are fixed, not learnt, so they cannot drift towards the training set's
    composition); the zeroing holds no state, so checkpoints keep the same arrays."""
    parts = []
    if cfg.clip_norm > 0:
        parts.append(optax.clip_by_global_norm(cfg.clip_norm))
    parts.append(OPTIMIZERS[cfg.optimizer](cfg, make_schedule(cfg, total_steps)))
    if not cfg.train_scale_shift:
        parts.append(optax.masked(optax.set_to_zero(), _frozen_mask))
    return optax.chain(*parts)


def ema_update(ema, params, decay: float, step):
    """``ema <- d ema + (1 - d) params`` with ``d = min(decay, (1 + t) / (10 + t))``.

    The warm-up of ``d`` (as in TensorFlow's ExponentialMovingAverage with ``num_updates``)
    keeps the average from being dominated by the random initial weights in short runs;
    ``decay = 0`` makes the EMA equal to the weights. Written as ``e + (1 - d)(p - e)`` in the
    weights' dtype, so that a weight that does not move (a frozen scale) keeps its EMA exactly.
    """
    t = jnp.asarray(step, jnp.float32)
    d = jnp.minimum(decay, (1.0 + t) / (10.0 + t))

    def one(e, p):
        return e + (1 - d.astype(p.dtype)) * (p - e)

    return jax.tree.map(one, ema, params)
