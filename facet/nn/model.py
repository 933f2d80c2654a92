"""The Facet model: embedding, interaction blocks, per-atom energy readout, ZBL and E0s.

Per-atom energy of atom ``i`` with atomic number ``Z_i`` after ``T`` blocks:

.. math::  E_i = s_{Z_i}\\,\\big[\\mathrm{MLP}(h^{(T)}_{i,0e}) - \\mathrm{MLP}(h^{(0)}_{i,0e})\\big]
           + b_{Z_i} + E^0_{Z_i} + \\tfrac12 \\sum_{j} E^{ZBL}_{ij},

``h^(0) = embedding[Z]`` (scalars only), ``s, b`` the per-element scale and shift (``nnx.Param``),
``E^0`` the atomic reference energies (:class:`AtomicEnergies`, not a ``Param``). Subtracting the
readout of the bare embedding makes the learned part vanish for an atom without neighbours, so an
isolated atom has energy ``E^0_Z + b_Z`` exactly (``b = 0`` unless set). Units: Angstrom, eV.
"""

from __future__ import annotations

import e3nn_jax as e3nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from .config import ModelConfig
from .interaction import InteractionBlock
from .linear import feature_irreps, natural_irreps
from .radial import RADIAL_BASES, polynomial_envelope
from .zbl import zbl_pair_energy

__all__ = ["AtomicEnergies", "FacetModel", "check_atomic_numbers", "edge_vectors", "NUM_Z"]

NUM_Z = 119  # index = atomic number, 0 is padding


class AtomicEnergies(nnx.Variable):
    """Per-element reference energies ``E0`` (eV), shape (119,). Not an ``nnx.Param``: optimisers
    built with ``wrt=nnx.Param`` leave them alone."""


def check_atomic_numbers(numbers, where: str = "") -> None:
    """Raise ``ValueError`` unless every atomic number is in 1..118 (call outside ``jit``)."""
    z = np.asarray(numbers)
    bad = z[(z < 1) | (z > 118)]
    if bad.size:
        loc = f" in {where}" if where else ""
        raise ValueError(
            f"atomic numbers must be in 1..118; got {sorted(set(bad.tolist()))[:10]}{loc}"
        )


def edge_vectors(positions, cell, shifts, senders, receivers, node_graph):
    """``r_ij = x_j + S_e C_g - x_i`` for every edge (see :mod:`facet.data.batch`)."""
    edge_cell = cell[node_graph[receivers]]  # (E, 3, 3)
    return positions[senders] - positions[receivers] + jnp.einsum("ei,eij->ej", shifts, edge_cell)


class FacetModel(nnx.Module):
    """Facet interatomic potential; ``model(batch) -> node_energies (N,)`` in eV."""

    def __init__(self, config: ModelConfig, *, rngs: nnx.Rngs):
        dtype = jnp.dtype(config.dtype)
        if dtype == jnp.float64 and not jax.config.jax_enable_x64:
            raise ValueError(
                f"dtype={config.dtype!r} needs JAX's 64-bit mode; build and call the model inside "
                "`with jax.enable_x64(True):` (Facet never changes global JAX flags)"
            )
        self.config = config
        c = config.channels
        self.embedding = nnx.Param(jax.random.normal(rngs.params(), (NUM_Z, c), dtype))
        irreps_in = e3nn.Irreps("0e")
        blocks = []
        for _ in range(config.num_layers):
            blocks.append(InteractionBlock(config, irreps_in, rngs=rngs, dtype=dtype))
            irreps_in = feature_irreps(config.lmax, config.pseudo)
        self.blocks = nnx.List(blocks)
        self.readout_w1 = nnx.Param(
            jax.random.normal(rngs.params(), (c, config.readout_hidden), dtype)
        )
        self.readout_w2 = nnx.Param(
            jax.random.normal(rngs.params(), (config.readout_hidden,), dtype)
        )
        self.scale = nnx.Param(jnp.ones((NUM_Z,), dtype))
        self.shift = nnx.Param(jnp.zeros((NUM_Z,), dtype))
        self.atomic_energies = AtomicEnergies(jnp.zeros((NUM_Z,), dtype))

    # -- properties and setters ---------------------------------------------------------------
    @property
    def cutoff(self) -> float:
        """Neighbour-list cutoff (Angstrom)."""
        return float(self.config.cutoff)

    @property
    def dtype(self):
        return jnp.dtype(self.config.dtype)

    def set_atomic_energies(self, e0_by_z) -> None:
        """Set ``E0`` from an array of 119 energies (eV) indexed by atomic number."""
        e0 = np.asarray(e0_by_z, dtype=np.float64)
        if e0.shape != (NUM_Z,) or not np.all(np.isfinite(e0)):
            raise ValueError(f"atomic energies must be 119 finite values, got shape {e0.shape}")
        self.atomic_energies[...] = jnp.asarray(e0, self.dtype)

    def set_scale_shift(self, scale, shift) -> None:
        """Set per-element ``scale`` and ``shift`` (scalars or arrays of 119)."""
        for name, v in (("scale", scale), ("shift", shift)):
            a = np.broadcast_to(np.asarray(v, dtype=np.float64), (NUM_Z,))
            if not np.all(np.isfinite(a)):
                raise ValueError(f"{name} must be finite")
            getattr(self, name)[...] = jnp.asarray(a, self.dtype)

    # -- forward --------------------------------------------------------------------------------
    def _readout(self, s):
        c = s.shape[-1]
        w1, w2 = self.readout_w1[...], self.readout_w2[...]
        hid = jax.nn.silu(s @ w1 / jnp.sqrt(c).astype(s.dtype))
        return hid @ w2 / jnp.sqrt(w2.shape[0]).astype(s.dtype)

    def node_energies(self, batch, positions, cell):
        """Per-atom energies (N,) for ``batch`` with ``positions`` and ``cell`` substituted (the
        hook :func:`facet.physics.predict` differentiates through)."""
        cfg = self.config
        dtype = self.dtype
        positions = positions.astype(dtype)
        cell = cell.astype(dtype)
        shifts = batch.shifts.astype(dtype)
        z = batch.numbers
        emask = batch.edge_mask
        vec = edge_vectors(
            positions, cell, shifts, batch.senders, batch.receivers, batch.node_graph
        )
        # Padding edges have zero length: replace them before any norm (finite gradients).
        vec = jnp.where(emask[:, None], vec, jnp.asarray([0.0, 0.0, 1.0], dtype))
        r = jnp.sqrt(jnp.sum(vec * vec, axis=-1))
        env = polynomial_envelope(r, cfg.cutoff, cfg.envelope_p) * emask
        feats = RADIAL_BASES[cfg.radial_basis](r, cfg.num_radial, cfg.cutoff) * env[:, None]
        sh = e3nn.spherical_harmonics(
            natural_irreps(cfg.lmax), vec, normalize=True, normalization="component"
        ).array

        h0 = self.embedding[...][z][:, :, None]  # (N, C, 1): 0e per channel
        h = h0
        for block in self.blocks:
            h = block(h, sh, feats, batch.senders, batch.receivers)
        out = self._readout(h[:, :, 0]) - self._readout(h0[:, :, 0])
        e = self.scale[...][z] * out + self.shift[...][z] + self.atomic_energies[...][z]
        if cfg.zbl:
            pair = zbl_pair_energy(
                r, z[batch.receivers], z[batch.senders], factor=cfg.zbl_cutoff_factor
            )
            pair = jnp.where(emask, pair, 0.0)
            e = e + 0.5 * jax.ops.segment_sum(pair, batch.receivers, num_segments=e.shape[0])
        return jnp.where(batch.node_mask, e, 0.0)

    def __call__(self, batch):
        return self.node_energies(batch, batch.positions, batch.cell)
