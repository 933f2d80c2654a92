"""Energy, forces and stress of a model on a :class:`facet.data.GraphBatch`.

Conventions (ASE's):

* energy ``E_g = sum_{i in g} E_i`` (eV); padding graphs get 0;
* forces ``F_i = -dE/dx_i`` (eV/A);
* stress ``sigma_g = (1/V_g) dE_g/d(eps_g)`` (eV/A^3), with a symmetric strain ``eps`` applied to
  positions and cell, ``x -> x (I + eps)``, ``C -> C (I + eps)`` (row vectors); positive =
  tensile, Voigt order ``xx yy zz yz xz xy`` (:func:`full_to_voigt`). A graph that is not
  periodic along all three cell vectors has no volume: its stress is returned as 0.

:func:`predict` is pure in the model state: use it inside ``nnx.jit`` or on
``nnx.merge(graphdef, state)``. Dtypes follow the model; no global JAX flag is touched.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

__all__ = ["Predictions", "predict", "full_to_voigt", "voigt_to_full"]


class Predictions(NamedTuple):
    """Outputs of :func:`predict`: ``energy (G,)``, ``node_energies (N,)``, ``forces (N, 3)`` or
    None, ``stress (G, 3, 3)`` or None."""

    energy: jax.Array
    node_energies: jax.Array
    forces: jax.Array | None
    stress: jax.Array | None


def full_to_voigt(s):
    """``(..., 3, 3) -> (..., 6)`` in Voigt order ``xx yy zz yz xz xy``."""
    return jnp.stack(
        [s[..., 0, 0], s[..., 1, 1], s[..., 2, 2], s[..., 1, 2], s[..., 0, 2], s[..., 0, 1]],
        axis=-1,
    )


def voigt_to_full(v):
    """``(..., 6) -> (..., 3, 3)``, inverse of :func:`full_to_voigt` for symmetric tensors."""
    xx, yy, zz, yz, xz, xy = (v[..., k] for k in range(6))
    return jnp.stack(
        [jnp.stack([xx, xy, xz], -1), jnp.stack([xy, yy, yz], -1), jnp.stack([xz, yz, zz], -1)], -2
    )


def predict(model, batch, *, forces: bool = True, stress: bool = True) -> Predictions:
    """Energies and (optionally) forces and stress of ``model`` on ``batch`` (see module doc)."""
    dtype = model.dtype
    n_graph = batch.cell.shape[0]
    positions = jnp.asarray(batch.positions, dtype)
    cell = jnp.asarray(batch.cell, dtype)

    def energies(pos, strain):
        eps = 0.5 * (strain + jnp.swapaxes(strain, -1, -2))
        eye = jnp.eye(3, dtype=dtype)
        pos_s = jnp.einsum("ni,nij->nj", pos, eye + eps[batch.node_graph])
        cell_s = jnp.einsum("gki,gij->gkj", cell, eye + eps)
        node_e = model.node_energies(batch, pos_s, cell_s)
        graph_e = jax.ops.segment_sum(node_e, batch.node_graph, num_segments=n_graph)
        graph_e = jnp.where(batch.graph_mask, graph_e, 0.0)
        return jnp.sum(graph_e), (graph_e, node_e)

    strain0 = jnp.zeros((n_graph, 3, 3), dtype)
    if not (forces or stress):
        _, (graph_e, node_e) = energies(positions, strain0)
        return Predictions(graph_e, node_e, None, None)
    argnums = (0, 1) if stress else (0,)
    grads, (graph_e, node_e) = jax.grad(energies, argnums=argnums, has_aux=True)(positions, strain0)
    f = s = None
    if forces:
        f = jnp.where(batch.node_mask[:, None], -grads[0], 0.0)
    if stress:
        volume = jnp.abs(jnp.linalg.det(cell))
        periodic = jnp.all(batch.pbc, axis=-1) & batch.graph_mask
        safe_v = jnp.where(periodic, volume, 1.0)
        s = jnp.where(periodic[:, None, None], grads[1] / safe_v[:, None, None], 0.0)
    return Predictions(graph_e, node_e, f, s)
