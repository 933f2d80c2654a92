"""Loss terms and validation error sums on padded batches.

Every quantity is reduced as a *sum* plus a *count* so that batches, devices and hosts combine
exactly: the loss of a global batch split over devices equals the loss of the union batch, and a
validation MAE is ``sum |err| / count`` over the whole set, never a mean of per-batch means.

Terms (``w_g`` the per-structure weight, masks from :class:`facet.data.GraphBatch`):

.. math::

    L = \\lambda_E \\frac{\\sum_g w_g \\rho(\\hat E_g/n_g - E_g/n_g)}{\\sum_g w_g}
      + \\lambda_F \\frac{\\sum_{i,a} w_{g(i)} \\rho(\\hat F_{ia} - F_{ia})}{3 \\sum_i w_{g(i)}}
      + \\lambda_\\sigma \\frac{\\sum_{g,ab} w_g \\rho(\\hat\\sigma_{g,ab} - \\sigma_{g,ab})}
        {9 \\sum_g w_g}

with the sums running over labelled, real entries only (``energy_mask``, ``forces_mask``,
``stress_mask``, ``node_mask``, ``graph_mask``) and ``rho`` one of :data:`LOSS_KINDS`. Energies
are compared per atom (``n_g`` = ``n_node``), in eV/atom; forces in eV/A; stress in eV/A^3.
"""

from __future__ import annotations

from collections.abc import Callable

import jax.numpy as jnp
import numpy as np

__all__ = ["LOSS_KINDS", "TERMS", "loss_sums", "combine_loss", "error_sums", "finalize_metrics"]

TERMS = ("energy", "forces", "stress")


def _mse(err, delta):
    return err * err


def _mae(err, delta):
    return jnp.abs(err)


def _huber(err, delta):
    """Huber (1964): ``e^2/2`` for ``|e| <= delta``, ``delta (|e| - delta/2)`` beyond."""
    a = jnp.abs(err)
    return jnp.where(a <= delta, 0.5 * err * err, delta * (a - 0.5 * delta))


LOSS_KINDS: dict[str, Callable] = {"mse": _mse, "mae": _mae, "huber": _huber}


def _masks(batch):
    """Per-graph and per-node weights of the labelled, real entries for each term."""
    gmask = batch.graph_mask
    w = batch.weight
    e_w = jnp.where(gmask & batch.energy_mask, w, 0.0)
    s_w = jnp.where(gmask & batch.stress_mask, w, 0.0)
    f_g = jnp.where(gmask & batch.forces_mask, w, 0.0)
    f_w = jnp.where(batch.node_mask, f_g[batch.node_graph], 0.0)
    return e_w, f_w, s_w


def _errors(pred, batch):
    """Signed errors: energy per atom (G,), forces (N, 3) and stress (G, 3, 3), or None."""
    n = jnp.maximum(batch.n_node, 1).astype(pred.energy.dtype)
    e_err = (pred.energy - batch.energy) / n
    f_err = None if pred.forces is None else pred.forces - batch.forces
    s_err = None if pred.stress is None else pred.stress - batch.stress
    return e_err, f_err, s_err


def loss_sums(pred, batch, loss_cfg) -> dict[str, tuple[jnp.ndarray, jnp.ndarray]]:
    """``{term: (sum of w * rho(err), sum of weights * components)}`` for one batch.

    ``pred`` has ``energy`` (G,), ``forces`` (N, 3) or None, ``stress`` (G, 3, 3) or None (a
    :class:`facet.physics.Predictions`); ``loss_cfg`` a :class:`facet.train.config.LossSection`.
    Padding entries are excluded with ``jnp.where`` (not multiplication) so that a non-finite
    prediction on a padding slot cannot leak into the loss.
    """
    e_w, f_w, s_w = _masks(batch)
    e_err, f_err, s_err = _errors(pred, batch)
    delta = loss_cfg.huber_delta
    out = {}
    rho = LOSS_KINDS[loss_cfg.energy_kind]
    out["energy"] = (jnp.sum(jnp.where(e_w > 0, e_w * rho(e_err, delta), 0.0)), jnp.sum(e_w))
    if f_err is not None:
        rho = LOSS_KINDS[loss_cfg.forces_kind]
        v = jnp.where(f_w[:, None] > 0, f_w[:, None] * rho(f_err, delta), 0.0)
        out["forces"] = (jnp.sum(v), 3.0 * jnp.sum(f_w))
    if s_err is not None:
        rho = LOSS_KINDS[loss_cfg.stress_kind]
        v = jnp.where(s_w[:, None, None] > 0, s_w[:, None, None] * rho(s_err, delta), 0.0)
        out["stress"] = (jnp.sum(v), 9.0 * jnp.sum(s_w))
    return out


def combine_loss(sums: dict, loss_cfg) -> jnp.ndarray:
    """Weighted sum of ``sum / count`` per term; a term with no labels contributes 0."""
    total = 0.0
    for term, (s, c) in sums.items():
        weight = getattr(loss_cfg, f"{term}_weight")
        total = total + weight * s / jnp.maximum(c, 1e-12) * (c > 0)
    return total


def error_sums(pred, batch) -> dict[str, jnp.ndarray]:
    """Unweighted error sums for validation: ``{term}_abs``, ``{term}_sq`` and ``{term}_n``.

    Energy per atom counts one entry per labelled structure, forces three per atom, stress nine
    per structure. Units are eV-based here; :func:`finalize_metrics` converts to meV.
    """
    gmask = batch.graph_mask
    e_m = gmask & batch.energy_mask
    s_m = gmask & batch.stress_mask
    f_m = batch.node_mask & (gmask & batch.forces_mask)[batch.node_graph]
    e_err, f_err, s_err = _errors(pred, batch)
    dt = pred.energy.dtype

    def acc(name, err, mask):
        err = jnp.where(mask, err, 0.0)
        return {
            f"{name}_abs": jnp.sum(jnp.abs(err)),
            f"{name}_sq": jnp.sum(err * err),
            f"{name}_n": jnp.sum(mask.astype(dt)),
        }

    out = acc("energy", e_err, e_m)
    if f_err is not None:
        out |= acc("forces", f_err, jnp.broadcast_to(f_m[:, None], f_err.shape))
    if s_err is not None:
        out |= acc("stress", s_err, jnp.broadcast_to(s_m[:, None, None], s_err.shape))
    return out


# eV -> meV for every term (energy per atom, forces per A, stress per A^3).
_UNITS = {"energy": "meV/atom", "forces": "meV/A", "stress": "meV/A^3"}


def finalize_metrics(sums: dict) -> dict[str, float]:
    """MAE and RMSE in meV units from accumulated :func:`error_sums` (host-side NumPy).

    Keys: ``energy_mae``, ``energy_rmse`` (meV/atom), ``forces_mae``, ``forces_rmse`` (meV/A),
    ``stress_mae``, ``stress_rmse`` (meV/A^3), plus ``{term}_count``. Terms without labels are
    omitted rather than reported as 0.
    """
    out: dict[str, float] = {}
    for term in TERMS:
        if f"{term}_n" not in sums:
            continue
        n = float(np.asarray(sums[f"{term}_n"]))
        if n <= 0:
            continue
        out[f"{term}_mae"] = 1e3 * float(np.asarray(sums[f"{term}_abs"])) / n
        out[f"{term}_rmse"] = 1e3 * float(np.sqrt(np.asarray(sums[f"{term}_sq"]) / n))
        out[f"{term}_count"] = n
    return out


def metric_units() -> dict[str, str]:
    return dict(_UNITS)
