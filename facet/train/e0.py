"""Per-element reference energies (E0s) and the scale/shift of the network output.

E0s are fitted by linear least squares on the training split: with ``C[s, Z]`` the number of
atoms of element ``Z`` in structure ``s`` and ``E_s`` its total energy,

.. math::  E_0 = \\arg\\min_{e} \\lVert C e - E \\rVert_2 ,

solved over the elements that occur (``numpy.linalg.lstsq``, minimum-norm when compositions are
collinear, e.g. a set of one stoichiometry); absent elements get ``E0 = 0``. This is the
"average" E0 of MACE (Batatia et al., NeurIPS 2022) and NequIP's per-species shift.

The network output is then mapped to a node energy ``scale * out + shift + E0[Z]`` with

* ``shift`` = mean over training structures of the per-atom residual ``(E_s - C_s E_0) / n_s``
  (eV/atom; close to 0 after a good E0 fit),
* ``scale`` = RMS of the training force components (eV/A), the natural energy scale of a
  per-atom network whose gradients are forces; when no forces are labelled, the standard
  deviation of the per-atom residual energy; 1 if that is zero.

Both are scalars broadcast to every element (the model takes scalars or ``(119,)``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["N_ELEMENTS", "composition_matrix", "fit_atomic_energies", "fit_scale_shift"]

N_ELEMENTS = 119  # index = atomic number, 0 unused


def composition_matrix(graphs: Sequence) -> np.ndarray:
    """``(n_structures, 119)`` counts of each atomic number per structure."""
    c = np.zeros((len(graphs), N_ELEMENTS))
    for s, g in enumerate(graphs):
        z = np.asarray(g.numbers)
        if z.size and (z.min() < 1 or z.max() >= N_ELEMENTS):
            raise ValueError(f"structure {g.key or s}: atomic numbers outside 1..118: {z}")
        np.add.at(c[s], z, 1.0)
    return c


def fit_atomic_energies(graphs: Sequence) -> np.ndarray:
    """Least-squares E0s (eV) from the structures with an energy label; ``(119,)``."""
    labelled = [g for g in graphs if g.energy is not None]
    if not labelled:
        raise ValueError("cannot fit E0s: no training structure has an energy label")
    c = composition_matrix(labelled)
    e = np.array([float(g.energy) for g in labelled])
    if not np.all(np.isfinite(e)):
        bad = [g.key for g, v in zip(labelled, e, strict=True) if not np.isfinite(v)][:3]
        raise ValueError(f"cannot fit E0s: non-finite energies in structures {bad}")
    present = np.flatnonzero(c.sum(axis=0) > 0)
    sol, *_ = np.linalg.lstsq(c[:, present], e, rcond=None)
    e0 = np.zeros(N_ELEMENTS)
    e0[present] = sol
    return e0


def fit_scale_shift(graphs: Sequence, e0: np.ndarray) -> tuple[float, float]:
    """``(scale, shift)`` as documented in the module docstring."""
    residual = []
    for g in graphs:
        if g.energy is None:
            continue
        residual.append((float(g.energy) - float(np.sum(e0[np.asarray(g.numbers)]))) / g.n_node)
    shift = float(np.mean(residual)) if residual else 0.0
    forces = [np.asarray(g.forces).ravel() for g in graphs if g.forces is not None]
    if forces:
        f = np.concatenate(forces)
        scale = float(np.sqrt(np.mean(f * f)))
    elif len(residual) > 1:
        scale = float(np.std(residual))
    else:
        scale = 1.0
    if not np.isfinite(scale) or scale <= 0:
        scale = 1.0
    return scale, shift
