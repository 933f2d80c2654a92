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

PAD = (40, 1536, 4)  # nodes, edges, graph slots


def periodic_cell() -> Atoms:
    """4 atoms of 4 elements in a skewed triclinic cell (no symmetry to hide errors)."""
    cell = np.array([[3.3, 0.1, 0.2], [0.3, 3.5, 0.1], [-0.2, 0.4, 3.7]])
    frac = np.array(
        [[0.02, 0.05, 0.01], [0.48, 0.52, 0.07], [0.13, 0.55, 0.49], [0.61, 0.07, 0.53]]
    )
    return Atoms([14, 8, 26, 3], scaled_positions=frac, cell=cell, pbc=True)


def molecule() -> Atoms:
    """A 5-atom open cluster (C, O, H, H, N), bond lengths 1-1.5 A."""
    pos = np.array(
        [
            [0.0, 0.0, 0.0],
            [1.21, 0.1, -0.05],
            [-0.55, 0.93, 0.12],
            [-0.5, -0.9, 0.3],
            [0.3, 0.2, 1.4],
        ]
    )
    return Atoms([6, 8, 1, 1, 7], positions=pos, pbc=False)


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
