"""A Morse pair potential on :class:`~facet.data.GraphBatch`: a reference model for the dynamics.

It follows the model contract (``model.cutoff``, ``model.dtype``; ``model(batch) ->
node_energies``, eV, zero on padding; ``model.node_energies(batch, positions, cell)`` for
:func:`facet.physics.predict`) so that the calculator, the relaxations and the molecular
dynamics can be tested independently of the network, and it reproduces ASE's
:class:`ase.calculators.morse.MorsePotential` exactly, which gives an external reference for
energies, forces and stress.

Pair energy (Morse 1929, with the smooth quintic cutoff ASE ports from JuLIP.jl):

.. math::  \\phi(r) = \\epsilon\\, e^{\\rho_0 (1 - r/r_0)}
           \\left(e^{\\rho_0 (1 - r/r_0)} - 2\\right) f_c(r),

.. math::  f_c(r) = 6 s^5 - 15 s^4 + 10 s^3,\\; s = 1 - \\frac{r - r_1}{r_2 - r_1}

(``f_c = 1`` below ``r_1 = rcut1 * r0``, 0 beyond ``r_2 = rcut2 * r0``). Each ordered edge carries
half a pair energy, assigned to its receiver (the centre atom), as ASE's per-atom ``energies``.

:func:`analytic_predict` gives energy, forces and stress from the analytic derivative (no autodiff):
``F_i = sum_j phi'(r_ij) r_ij / r_ij`` and the virial stress
``sigma = (1 / 2V) sum_(ordered ij) r_ij (x) phi'(r_ij) r_ij / r_ij`` (eV/A^3, ASE sign).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from ..data.batch import GraphBatch
from .neighbors import edge_vectors

__all__ = ["MorsePotential", "PairPredictions", "analytic_predict", "edge_vectors"]


class PairPredictions(NamedTuple):
    """Same fields as ``facet.physics.Predictions``."""

    energy: jax.Array  # (G,) eV
    node_energies: jax.Array  # (N,) eV
    forces: jax.Array | None  # (N, 3) eV/A
    stress: jax.Array | None  # (G, 3, 3) eV/A^3, ASE sign


def _fcut(r, r1, r2):
    s = 1.0 - (r - r1) / (r2 - r1)
    poly = 6.0 * s**5 - 15.0 * s**4 + 10.0 * s**3
    return jnp.where(s >= 1.0, 1.0, jnp.where(s > 0.0, poly, 0.0))


def _fcut_d(r, r1, r2):
    s = 1.0 - (r - r1) / (r2 - r1)
    d = -(30.0 * s**4 - 60.0 * s**3 + 30.0 * s**2) / (r2 - r1)
    return jnp.where((s > 0.0) & (s < 1.0), d, 0.0)


class MorsePotential(nnx.Module):
    """Morse pair potential with ASE's parameters and cutoff; energies in eV, lengths in A.

    ``epsilon``, ``r0``, ``rho0`` are :class:`flax.nnx.Param` so that the model splits and merges
    like the network; ``cutoff = rcut2 * r0``.
    """

    def __init__(self, epsilon=1.0, r0=1.0, rho0=6.0, rcut1=1.9, rcut2=2.7, *, dtype="float32"):
        self.epsilon = nnx.Param(jnp.asarray(epsilon, dtype))
        self.r0 = nnx.Param(jnp.asarray(r0, dtype))
        self.rho0 = nnx.Param(jnp.asarray(rho0, dtype))
        self.rcut1 = float(rcut1)
        self.rcut2 = float(rcut2)
        self.cutoff = float(rcut2 * r0)
        self.dtype = jnp.dtype(dtype)

    def _pair(self, batch: GraphBatch):
        vec = edge_vectors(batch)
        mask = jnp.asarray(batch.edge_mask)
        d2 = jnp.sum(vec**2, axis=-1)
        # Padding edges have r = 0: substitute 1 so that neither value nor gradient is NaN.
        d = jnp.sqrt(jnp.where(mask, d2, 1.0))
        r0, eps, rho0 = self.r0[...], self.epsilon[...], self.rho0[...]
        r1, r2 = self.rcut1 * r0, self.rcut2 * r0
        expf = jnp.exp(rho0 * (1.0 - d / r0))
        phi = eps * expf * (expf - 2.0)
        fc = _fcut(d, r1, r2)
        dphi = (-2.0 * eps * rho0 / r0) * expf * (expf - 1.0) * fc + phi * _fcut_d(d, r1, r2)
        mask = mask & (d < r2)
        return vec, d, jnp.where(mask, phi * fc, 0.0), jnp.where(mask, dphi, 0.0)

    def node_energies(self, batch: GraphBatch, positions, cell) -> jax.Array:
        """Node energies with ``positions``/``cell`` substituted (the hook
        :func:`facet.physics.predict` differentiates through)."""
        return self(batch._replace(positions=positions, cell=cell))

    def __call__(self, batch: GraphBatch) -> jax.Array:
        _, _, e_pair, _ = self._pair(batch)
        n = batch.positions.shape[0]
        node_e = jax.ops.segment_sum(0.5 * e_pair, batch.receivers, num_segments=n)
        return jnp.where(batch.node_mask, node_e, 0.0)


def analytic_predict(
    model: MorsePotential, batch: GraphBatch, *, forces: bool = True, stress: bool = True
) -> PairPredictions:
    """Energy, forces and stress of a :class:`MorsePotential` from the analytic derivative.

    Stress is zero for graphs that are not periodic in all three directions (the model
    contract's convention).
    """
    vec, d, e_pair, dphi = model._pair(batch)
    n, g = batch.positions.shape[0], batch.cell.shape[0]
    node_e = jax.ops.segment_sum(0.5 * e_pair, batch.receivers, num_segments=n)
    node_e = jnp.where(batch.node_mask, node_e, 0.0)
    energy = jax.ops.segment_sum(node_e, batch.node_graph, num_segments=g)
    f = s = None
    fvec = (dphi / d)[:, None] * vec  # dphi/dr * r_hat, on the receiver
    if forces:
        f = jax.ops.segment_sum(fvec, batch.receivers, num_segments=n)
    if stress:
        eg = jnp.asarray(batch.node_graph)[jnp.asarray(batch.receivers)]
        w = jax.ops.segment_sum(0.5 * vec[:, :, None] * fvec[:, None, :], eg, num_segments=g)
        cell = jnp.asarray(batch.cell, vec.dtype)
        vol = jnp.abs(jnp.linalg.det(cell))
        periodic = jnp.all(batch.pbc, axis=-1) & batch.graph_mask
        s = jnp.where(periodic[:, None, None], w / jnp.where(periodic, vol, 1.0)[:, None, None], 0)
    return PairPredictions(energy, node_e, f, s)
