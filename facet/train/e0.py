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
from pathlib import Path

import numpy as np

__all__ = ["N_ELEMENTS", "composition_matrix", "fit_atomic_energies", "fit_new_atomic_energies",
           "fit_scale_shift", "load_atomic_energies"]

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


def _normal_equations(graphs: Sequence, energies: Sequence | None):
    """``(C^T C, C^T E, n)`` over the structures with an energy label, in one streaming pass."""
    ctc = np.zeros((N_ELEMENTS, N_ELEMENTS))
    cte = np.zeros(N_ELEMENTS)
    n = 0
    for s, g in enumerate(graphs):
        if g.energy is None:
            continue
        z = np.asarray(g.numbers)
        if z.size and (z.min() < 1 or z.max() >= N_ELEMENTS):
            raise ValueError(f"structure {g.key or s}: atomic numbers outside 1..118: {z}")
        e = float(g.energy if energies is None else energies[s])
        if not np.isfinite(e):
            raise ValueError(f"cannot fit E0s: non-finite energy in structure {g.key or s}")
        c = np.bincount(z, minlength=N_ELEMENTS).astype(float)
        nz = np.flatnonzero(c)
        ctc[np.ix_(nz, nz)] += np.outer(c[nz], c[nz])
        cte[nz] += c[nz] * e
        n += 1
    if n == 0:
        raise ValueError("cannot fit E0s: no training structure has an energy label")
    return ctc, cte, n


def fit_atomic_energies(graphs: Sequence, energies: Sequence | None = None) -> np.ndarray:
    """Least-squares E0s (eV) from the structures with an energy label; ``(119,)``.

    One streaming pass: the normal equations ``C^T C`` (119 x 119) and ``C^T E`` are
    accumulated structure by structure, so memory does not grow with the data set, and solved
    with ``lstsq`` restricted to the elements present (minimum norm if they are collinear).

    ``energies`` (one per graph) replaces the labels of the labelled graphs: fine-tuning fits
    the residuals of the pretrained model this way (E0 corrections).
    """
    ctc, cte, _ = _normal_equations(graphs, energies)
    present = np.flatnonzero(np.diag(ctc) > 0)
    sol, *_ = np.linalg.lstsq(ctc[np.ix_(present, present)], cte[present], rcond=None)
    e0 = np.zeros(N_ELEMENTS)
    e0[present] = sol
    return e0


def fit_new_atomic_energies(graphs: Sequence, e0: np.ndarray, new: Sequence[int]) -> np.ndarray:
    """``e0`` with the E0s of the elements ``new`` fitted by least squares, the others held.

    For data extended with elements a trained model never saw (a resumed run): the other E0s
    stay as trained, so the network's output keeps its meaning. With ``C = [C_k, C_n]`` split
    into held and new columns, the new E0s solve ``C_n^T C_n x = C_n^T (E - C_k e_k)``; only
    structures holding a new element contribute.
    """
    new = np.asarray(sorted(int(z) for z in new), int)
    out = np.asarray(e0, np.float64).copy()
    if new.size == 0:
        return out
    ctc, cte, _ = _normal_equations(graphs, None)
    held = out.copy()
    held[new] = 0.0
    rhs = cte[new] - ctc[new] @ held
    sol, *_ = np.linalg.lstsq(ctc[np.ix_(new, new)], rhs, rcond=None)
    out[new] = sol
    return out


def fit_scale_shift(graphs: Sequence, e0: np.ndarray) -> tuple[float, float]:
    """``(scale, shift)`` as documented in the module docstring (one streaming pass)."""
    n_e = sum_r = sum_r2 = 0.0
    n_f = sum_f2 = 0.0
    for g in graphs:
        if g.energy is not None:
            r = (float(g.energy) - float(np.sum(e0[np.asarray(g.numbers)]))) / g.n_node
            n_e, sum_r, sum_r2 = n_e + 1, sum_r + r, sum_r2 + r * r
        if g.forces is not None:
            f = np.asarray(g.forces, np.float64)
            n_f, sum_f2 = n_f + f.size, sum_f2 + float(np.sum(f * f))
    shift = sum_r / n_e if n_e else 0.0
    if n_f:
        scale = float(np.sqrt(sum_f2 / n_f))
    elif n_e > 1:
        scale = float(np.sqrt(max(sum_r2 / n_e - shift * shift, 0.0)))
    else:
        scale = 1.0
    if not np.isfinite(scale) or scale <= 0:
        scale = 1.0
    return scale, shift


def load_atomic_energies(path: str | Path, required: Sequence[int] = ()) -> np.ndarray:
    """Fixed E0s (eV) from a JSON file ``{"H": -1.12, "He": 0.0, ...}``; ``(119,)``.

    Such a table anchors the energies to references that do not depend on which compositions
    the training data happens to hold, e.g. the teacher's own isolated-atom energies
    (``data/distill2/teacher_e0.json``), where a least-squares fit over few compositions can be
    off by eV for an element seen in one stoichiometry only. ``required``: atomic numbers that
    must have an entry (the training elements); a missing one is an error naming it, as is an
    unknown symbol or a non-finite value.
    """
    import json

    from ase.data import atomic_numbers, chemical_symbols

    path = Path(path)
    try:
        table = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: cannot read the E0 table: {err}") from None
    if not isinstance(table, dict):
        raise ValueError(f"{path}: the E0 table must map element symbols to energies in eV")
    e0 = np.zeros(N_ELEMENTS)
    for sym, value in table.items():
        if sym not in atomic_numbers or atomic_numbers[sym] == 0:
            raise ValueError(f"{path}: unknown element symbol {sym!r}")
        try:
            v = float(value)
        except (TypeError, ValueError):
            v = float("nan")
        if not np.isfinite(v):
            raise ValueError(f"{path}: E0 of {sym} is not a finite number: {value!r}")
        e0[atomic_numbers[sym]] = v
    missing = sorted({int(z) for z in required}
                     - {atomic_numbers[s] for s in table if s in atomic_numbers})
    if missing:
        names = ", ".join(chemical_symbols[z] for z in missing)
        raise ValueError(f"{path}: no E0 for the training element(s) {names}")
    return e0
