"""Shared structures and compiled predictors for the model test battery.

Every structure is padded to one shape (``PAD``) so that each (model, dtype) compiles a single
program that all tests of the battery reuse.
"""

from __future__ import annotations

import functools

import jax
import numpy as np
from ase import Atoms
from ase.build import bulk

from facet.data import collate
from facet.data.neighbors import graph_from_atoms
from facet.structures import skewed_cell, small_molecule

PAD = (40, 1536, 4)  # nodes, edges, graph slots


#: 4 atoms of 4 elements in a skewed triclinic cell (no symmetry to hide errors).
periodic_cell = skewed_cell
#: A 5-atom open cluster (C, O, H, H, N), bond lengths 1-1.5 A.
molecule = small_molecule


def copper_primitive() -> Atoms:
    return bulk("Cu", "fcc", a=3.61)


def batch_of(structures, dtype, cutoff, pad=PAD):
    graphs = [graph_from_atoms(a, cutoff, labels_from_calc=False) for a in structures]
    return collate(graphs, *pad, dtype=dtype)


def random_rotation(seed: int) -> np.ndarray:
    """Uniform proper rotation (QR of a Gaussian matrix with sign fix)."""
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def transform_batch(batch, q: np.ndarray):
    """Apply the orthogonal map ``x -> q x`` to positions and cell rows (shifts unchanged)."""
    return batch._replace(positions=batch.positions @ q.T, cell=batch.cell @ q.T)


@functools.cache
def _compiled(graphdef, forces: bool, stress: bool):
    from flax import nnx

    from facet.physics import predict

    @jax.jit
    def run(state, batch):
        return predict(nnx.merge(graphdef, state), batch, forces=forces, stress=stress)

    return run


def predictor(model, *, forces=True, stress=True):
    """A jitted ``batch -> Predictions`` with the model's current weights (cached per graphdef)."""
    from flax import nnx

    graphdef, state = nnx.split(model)
    run = _compiled(graphdef, forces, stress)
    return lambda batch: jax.tree_util.tree_map(np.asarray, run(state, batch))
