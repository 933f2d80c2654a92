"""Neighbour lists under periodic, mixed (slab) and open boundary conditions.

Edge convention (the one :mod:`facet.data.batch` documents): an edge ``e`` carries a message from
``senders[e]`` (the neighbour ``j``) to ``receivers[e]`` (the centre ``i``), with vector

.. math::  \\mathbf r_{ij} = \\mathbf x_j + \\mathbf S_e \\, \\mathbf C - \\mathbf x_i ,

``S_e`` the integer cell shift (a row vector) and ``C`` the cell (vectors as rows, Angstrom).
Every *ordered* pair with ``|r_ij| < cutoff`` is listed, so each unordered pair appears twice
(``i <- j`` with shift ``S`` and ``j <- i`` with ``-S``), and every periodic image counts: in a
cell smaller than the cutoff an atom is its own neighbour through non-zero shifts.

:func:`neighbor_list` wraps the native cell-list implementation of vesin
(https://github.com/Luthaf/vesin); :func:`brute_force_neighbor_list` is a slow, obviously correct
reference used by the tests. Edges are returned sorted by ``(receiver, sender, shift)`` so that
the output is deterministic whatever library produced it.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np

from .batch import Graph

__all__ = [
    "neighbor_list",
    "brute_force_neighbor_list",
    "graph_from_atoms",
    "graph_from_frame",
]


def _check_inputs(positions, cell, pbc, cutoff) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    positions = np.asarray(positions, dtype=np.float64)
    if positions.ndim != 2 or positions.shape[1] != 3:
        raise ValueError(f"positions must have shape (n, 3), got {positions.shape}")
    cell = np.zeros((3, 3)) if cell is None else np.asarray(cell, dtype=np.float64)
    if cell.shape != (3, 3):
        raise ValueError(f"cell must have shape (3, 3), got {cell.shape}")
    pbc = np.broadcast_to(np.asarray(pbc, dtype=bool), (3,)).copy()
    if not (np.isfinite(cutoff) and cutoff > 0):
        raise ValueError(f"cutoff must be a positive finite number, got {cutoff}")
    if not np.all(np.isfinite(positions)) or not np.all(np.isfinite(cell)):
        raise ValueError("positions and cell must be finite")
    if pbc.any() and periodic_volume_ratio(cell, pbc) <= 1e-8:
        raise ValueError(
            f"the cell vectors of the periodic directions {np.flatnonzero(pbc).tolist()} are "
            f"(nearly) linearly dependent: cell = {cell.tolist()}"
        )
    return positions, cell, pbc


def periodic_volume_ratio(cell: np.ndarray, pbc: np.ndarray) -> float:
    """How far the periodic cell vectors are from linear dependence, in [0, 1].

    The volume (3 periodic directions), area (2) or length (1) they span divided by the product of
    their lengths: 1 for orthogonal vectors, 0 for dependent (or zero) ones, scale-free.
    """
    v = np.asarray(cell, dtype=np.float64)[np.asarray(pbc, bool)].tolist()
    if not v:
        return 1.0
    # Plain floats: for 3 x 3 this is ~10x faster than np.linalg on tiny arrays.
    norms = [math.sqrt(x * x + y * y + z * z) for x, y, z in v]
    if min(norms) == 0.0:
        return 0.0
    if len(v) == 1:
        return 1.0
    (a1, a2, a3), (b1, b2, b3) = v[0], v[1]
    c = (a2 * b3 - a3 * b2, a3 * b1 - a1 * b3, a1 * b2 - a2 * b1)
    if len(v) == 2:
        span = math.sqrt(c[0] ** 2 + c[1] ** 2 + c[2] ** 2)
    else:
        span = abs(c[0] * v[2][0] + c[1] * v[2][1] + c[2] * v[2][2])
    return span / math.prod(norms)


def _sort_edges(senders, receivers, shifts):
    """Sort by (receiver, sender, shift) with one argsort over a packed int64 key."""
    if len(senders) == 0:
        return senders, receivers, shifts
    n = int(max(senders.max(), receivers.max())) + 1
    lo = shifts.min(axis=0)
    width = shifts.max(axis=0) - lo + 1
    if n * n * int(np.prod(width)) < 2**62:
        sh = shifts - lo
        key = ((receivers * n + senders) * width[0] + sh[:, 0]) * width[1] + sh[:, 1]
        order = np.argsort(key * width[2] + sh[:, 2], kind="stable")
    else:  # pragma: no cover - astronomically many atoms or images
        order = np.lexsort((shifts[:, 2], shifts[:, 1], shifts[:, 0], senders, receivers))
    return senders[order], receivers[order], shifts[order]


def _box_for_vesin(cell: np.ndarray, pbc: np.ndarray) -> np.ndarray:
    """A box whose periodic rows are the true cell vectors.

    The rows of non-periodic directions never enter the result (no shift is ever applied along
    them), so they are replaced by unit vectors orthogonal to the periodic ones. This keeps the
    box invertible for vesin's cell list whatever the user put there (zeros, a vacuum vector
    that is not orthogonal, ...). A fully open system keeps a zero box, which vesin treats as
    "no cell".
    """
    if not pbc.any():
        return np.zeros((3, 3))
    if pbc.all():
        return cell
    box = cell.copy()
    periodic = cell[pbc]
    # Orthonormal complement of the span of the periodic vectors.
    _, _, vt = np.linalg.svd(periodic)
    complement = vt[periodic.shape[0] :]
    for row, k in zip(complement, np.flatnonzero(~pbc), strict=True):
        box[k] = row
    return box


def neighbor_list(
    positions: np.ndarray,
    cell: np.ndarray | None,
    pbc: bool | np.ndarray,
    cutoff: float,
    *,
    self_interaction: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All ordered pairs within ``cutoff`` (Angstrom), all periodic images included.

    Args:
        positions: ``(n, 3)`` Cartesian positions, Angstrom. Atoms need not be wrapped into the
            cell.
        cell: ``(3, 3)`` cell vectors as rows; may be zero (or None) for an open system. Rows of
            non-periodic directions are ignored.
        pbc: bool or ``(3,)`` bools, periodicity along each cell vector.
        cutoff: radius, Angstrom; pairs with ``|r_ij| < cutoff`` are kept.
        self_interaction: also list each atom as its own neighbour with zero shift (``r = 0``).

    Returns:
        ``(senders, receivers, shifts)``: ``(m,)`` int64, ``(m,)`` int64, ``(m, 3)`` int64, with
        ``r_ij = positions[senders] + shifts @ cell - positions[receivers]``.

    Raises:
        ValueError: bad shapes, non-finite input, a non-positive cutoff or linearly dependent
            periodic cell vectors.
    """
    import vesin

    positions, cell, pbc = _check_inputs(positions, cell, pbc, cutoff)
    n = positions.shape[0]
    if n == 0:
        empty = np.zeros((0,), np.int64)
        return empty, empty.copy(), np.zeros((0, 3), np.int64)
    box = _box_for_vesin(cell, pbc)
    # One thread: structures are small (tens to hundreds of atoms), where vesin's threading costs
    # more than it gains; parallelise over structures instead.
    nl = vesin.NeighborList(cutoff=float(cutoff), full_list=True, n_threads=1)
    i, j, s = nl.compute(positions, box, pbc, quantities="ijS")
    senders = np.asarray(j, dtype=np.int64)
    receivers = np.asarray(i, dtype=np.int64)
    shifts = np.asarray(s, dtype=np.int64).reshape(-1, 3)
    if self_interaction:
        idx = np.arange(n, dtype=np.int64)
        senders = np.concatenate([senders, idx])
        receivers = np.concatenate([receivers, idx])
        shifts = np.concatenate([shifts, np.zeros((n, 3), np.int64)])
    return _sort_edges(senders, receivers, shifts)


def brute_force_neighbor_list(
    positions: np.ndarray,
    cell: np.ndarray | None,
    pbc: bool | np.ndarray,
    cutoff: float,
    *,
    self_interaction: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reference implementation of :func:`neighbor_list`: loop over every image, test every pair.

    Along a periodic direction ``k`` the lattice planes are ``1 / |b_k|`` apart (``b_k`` the k-th
    reciprocal vector, ``B = C^{-T}`` without the 2 pi), so an image ``n_k`` cells away is at
    least ``(|n_k| - span_k) / |b_k|`` from any atom, with ``span_k`` the spread of the atoms'
    fractional coordinates. Shifts up to ``ceil(cutoff |b_k| + span_k)`` therefore cover every
    pair within the cutoff. Cost ``O(n^2 * images)``: for tests only.
    """
    positions, cell, pbc = _check_inputs(positions, cell, pbc, cutoff)
    n = positions.shape[0]
    box = _box_for_vesin(cell, pbc) if pbc.any() else np.eye(3)
    recip = np.linalg.inv(box).T  # rows b_k with C_j . b_k = delta_jk
    frac = positions @ recip.T
    ranges = []
    for k in range(3):
        if pbc[k] and n:
            span = frac[:, k].max() - frac[:, k].min()
            r = math.ceil(cutoff * np.linalg.norm(recip[k]) + span)
            ranges.append(range(-r, r + 1))
        else:
            ranges.append(range(0, 1))
    all_shifts = np.array(list(itertools.product(*ranges)), dtype=np.int64).reshape(-1, 3)
    out_s, out_r, out_sh = [], [], []
    # Every (shift, i, j) triple, in blocks of shifts to bound memory:
    # d[k, i, j] = |x_j + S_k C - x_i|.
    block = max(1, 2_000_000 // max(n * n, 1))
    for k0 in range(0, len(all_shifts), block):
        sh = all_shifts[k0 : k0 + block]
        vec = positions[None, None, :, :] + (sh @ cell)[:, None, None, :] - positions[None, :, None]
        mask = np.sqrt((vec * vec).sum(axis=-1)) < cutoff
        zero = np.flatnonzero(~sh.any(axis=1))
        for z in zero:  # the zero shift: an atom is its own neighbour only if asked
            np.fill_diagonal(mask[z], self_interaction)
        k, r, s_ = np.nonzero(mask)
        out_r.append(r)
        out_s.append(s_)
        out_sh.append(sh[k])
    senders = np.concatenate(out_s).astype(np.int64)
    receivers = np.concatenate(out_r).astype(np.int64)
    shifts = np.concatenate(out_sh).reshape(-1, 3)
    return _sort_edges(senders, receivers, shifts)


def _calc_result(atoms, name: str):
    calc = getattr(atoms, "calc", None)
    if calc is None:
        return None
    results = getattr(calc, "results", {}) or {}
    return results.get(name)


def graph_from_atoms(
    atoms: Any,
    cutoff: float,
    *,
    energy: float | None = None,
    forces: np.ndarray | None = None,
    stress: np.ndarray | None = None,
    magmom: np.ndarray | None = None,
    weight: float = 1.0,
    key: str = "",
    labels_from_calc: bool = True,
) -> Graph:
    """Build a :class:`~facet.data.Graph` from an ``ase.Atoms``.

    Labels given as arguments win; otherwise, with ``labels_from_calc``, stored results of an
    attached calculator are used without triggering a calculation (``energy``, ``forces``,
    ``stress`` in ASE units and sign; a 6-component Voigt stress ``xx yy zz yz xz xy`` is
    expanded to 3 x 3).
    """
    if labels_from_calc:
        energy = energy if energy is not None else _calc_result(atoms, "energy")
        forces = forces if forces is not None else _calc_result(atoms, "forces")
        stress = stress if stress is not None else _calc_result(atoms, "stress")
        magmom = magmom if magmom is not None else _calc_result(atoms, "magmoms")
    if stress is not None:
        stress = voigt_to_matrix(stress)
    return _make_graph(
        atoms.get_positions(),
        atoms.get_atomic_numbers(),
        np.asarray(atoms.get_cell()),
        atoms.get_pbc(),
        cutoff,
        energy=energy,
        forces=forces,
        stress=stress,
        magmom=magmom,
        weight=weight,
        key=key,
    )


def graph_from_frame(frame: Any, cutoff: float, *, weight: float = 1.0) -> Graph:
    """Build a :class:`~facet.data.Graph` from a validated :class:`facet.data.frames.Frame`.

    Units and signs are already internal (eV, eV/A, eV/A^3 ASE sign); nothing is converted here.
    The graph key is ``frame.key`` (``"<material_id>/<frame_id>"``, see :class:`Frame`).
    """
    key = frame.key
    return _make_graph(
        frame.positions,
        frame.numbers,
        frame.cell,
        frame.pbc,
        cutoff,
        energy=frame.energy,
        forces=frame.forces,
        stress=frame.stress,
        magmom=frame.magmom,
        weight=weight,
        key=key,
    )


def voigt_to_matrix(stress: np.ndarray) -> np.ndarray:
    """``(6,)`` Voigt ``xx yy zz yz xz xy`` (ASE order) or ``(9,)``/``(3, 3)`` to a 3 x 3 matrix."""
    s = np.asarray(stress, dtype=np.float64)
    if s.shape == (3, 3):
        return s
    if s.shape == (9,):
        return s.reshape(3, 3)
    if s.shape == (6,):
        xx, yy, zz, yz, xz, xy = s
        return np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])
    raise ValueError(f"stress must have shape (6,), (9,) or (3, 3), got {s.shape}")


def _make_graph(positions, numbers, cell, pbc, cutoff, **labels) -> Graph:
    positions = np.asarray(positions, dtype=np.float64)
    cell = np.zeros((3, 3)) if cell is None else np.asarray(cell, dtype=np.float64)
    pbc = np.broadcast_to(np.asarray(pbc, dtype=bool), (3,)).copy()
    senders, receivers, shifts = neighbor_list(positions, cell, pbc, cutoff)

    def arr(x):
        return None if x is None else np.asarray(x, dtype=np.float64)

    energy = labels.pop("energy")
    return Graph(
        positions=positions,
        numbers=np.asarray(numbers, dtype=np.int64),
        cell=cell,
        pbc=pbc,
        senders=senders,
        receivers=receivers,
        shifts=shifts,
        energy=None if energy is None else float(energy),
        forces=arr(labels.pop("forces")),
        stress=arr(labels.pop("stress")),
        magmom=arr(labels.pop("magmom")),
        weight=float(labels.pop("weight")),
        key=labels.pop("key"),
    )
