"""Neighbour lists against a brute-force reference: random, tiny and skewed cells, slabs, wires,
molecules; plus the edge convention and the Graph helpers."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, fcc111, molecule
from ase.calculators.singlepoint import SinglePointCalculator

from facet.data.neighbors import (
    brute_force_neighbor_list,
    graph_from_atoms,
    neighbor_list,
    voigt_to_matrix,
)


def _edge_set(s, r, sh):
    return sorted(zip(s.tolist(), r.tolist(), map(tuple, sh.tolist()), strict=True))


def _assert_same(positions, cell, pbc, cutoff, **kw):
    got = neighbor_list(positions, cell, pbc, cutoff, **kw)
    ref = brute_force_neighbor_list(positions, cell, pbc, cutoff, **kw)
    # Output is sorted deterministically, so the arrays agree elementwise too.
    for a, b in zip(got, ref, strict=True):
        np.testing.assert_array_equal(a, b)
    return got


def _random_cell(rng, skew):
    cell = np.diag(rng.uniform(1.0, 3.0, 3))
    cell[1, 0] = skew * rng.uniform(-1, 1) * cell[0, 0]
    cell[2, :2] = skew * rng.uniform(-1, 1, 2) * cell[0, 0]
    # A random rotation so that the cell is not upper/lower triangular.
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    return cell @ q.T


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("skew", [0.0, 3.0])
def test_random_periodic_cells_match_brute_force(seed, skew):
    rng = np.random.default_rng(seed)
    cell = _random_cell(rng, skew)
    n = int(rng.integers(1, 6))
    # Atoms partly outside the cell: no wrapping is assumed.
    frac = rng.uniform(-0.5, 1.5, (n, 3))
    positions = frac @ cell
    cutoff = float(rng.uniform(2.0, 5.0))  # several times the smallest cell height
    s, r, sh = _assert_same(positions, cell, True, cutoff)
    vec = positions[s] + sh @ cell - positions[r]
    d = np.linalg.norm(vec, axis=1)
    assert d.max() < cutoff and d.min() > 0
    # Both directions of every pair: (j -> i, S) pairs with (i -> j, -S).
    edges = set(_edge_set(s, r, sh))
    assert all((b, a, tuple(-np.array(t))) in edges for a, b, t in edges)


def test_tiny_cell_sees_many_images_of_itself():
    # One atom in a 1 A simple cubic cell, cutoff 2.5 A: its neighbours are the lattice points
    # within 2.5 A, counted exactly (with multiplicity of each shell).
    cell = np.eye(3)
    s, r, sh = _assert_same(np.zeros((1, 3)), cell, True, 2.5)
    grid = np.array(np.meshgrid(*[np.arange(-3, 4)] * 3, indexing="ij")).reshape(3, -1).T
    norms = np.linalg.norm(grid, axis=1)
    assert len(s) == int(((norms > 0) & (norms < 2.5)).sum()) == 80
    assert np.all(s == 0) and np.all(r == 0)


def test_strongly_skewed_cell():
    # Cell vectors at a very acute angle: b2 almost parallel to b1; minimum image fails here.
    cell = np.array([[1.0, 0.0, 0.0], [6.0, 0.3, 0.0], [2.5, 1.7, 0.8]])
    rng = np.random.default_rng(7)
    positions = rng.uniform(0, 1, (3, 3)) @ cell
    # (3.0 would put lattice vectors exactly on the cutoff, where rounding decides.)
    s, r, sh = _assert_same(positions, cell, True, 3.05)
    assert np.abs(sh).max() >= 5  # far images really are needed


def test_fcc_copper_neighbour_shells():
    atoms = bulk("Cu", "fcc", a=3.6)  # primitive cell, one atom
    d_nn = 3.6 / np.sqrt(2)
    s, r, sh = _assert_same(atoms.positions, atoms.cell[:], True, d_nn + 0.1)
    assert len(s) == 12  # first shell
    s, r, sh = _assert_same(atoms.positions, atoms.cell[:], True, 3.6 + 0.1)
    assert len(s) == 18  # 12 + 6 second-shell neighbours


@pytest.mark.parametrize("pbc", [(True, True, False), (True, False, False), (False, True, True)])
def test_mixed_boundaries_match_brute_force(pbc):
    rng = np.random.default_rng(11)
    cell = _random_cell(rng, 1.0)
    positions = rng.uniform(-0.5, 1.5, (5, 3)) @ cell
    s, r, sh = _assert_same(positions, cell, pbc, 4.0)
    assert np.all(sh[:, ~np.asarray(pbc)] == 0)


def test_slab_with_vacuum_and_zero_vacuum_vector():
    slab = fcc111("Al", size=(2, 2, 3), vacuum=None, periodic=False)
    slab.pbc = (True, True, False)
    cell = slab.cell[:].copy()
    got = _assert_same(slab.positions, cell, slab.pbc, 5.0)
    # The non-periodic vector does not matter: zero it, or tilt it; same edges.
    for third in (np.zeros(3), np.array([3.0, -2.0, 0.5])):
        c2 = cell.copy()
        c2[2] = third
        other = neighbor_list(slab.positions, c2, slab.pbc, 5.0)
        assert _edge_set(*other) == _edge_set(*got)
    # No edge crosses the vacuum: z shifts are zero and top/bottom layers never interact
    # through an image.
    s, r, sh = got
    assert np.all(sh[:, 2] == 0)


def test_molecule_open_boundaries():
    mol = molecule("CH3CH2OH")
    for cell in (np.zeros((3, 3)), np.eye(3) * 2.0):  # a small cell is ignored when pbc=False
        s, r, sh = _assert_same(mol.positions, cell, False, 2.0)
        assert np.all(sh == 0)
    d = np.linalg.norm(mol.positions[:, None] - mol.positions[None], axis=-1)
    assert len(s) == int(((d < 2.0) & (d > 0)).sum())


def test_self_interaction_and_empty():
    pos = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    s, r, sh = _assert_same(pos, None, False, 1.5, self_interaction=True)
    assert len(s) == 4 and {(0, 0), (1, 1)} <= set(zip(s.tolist(), r.tolist(), strict=True))
    s, r, sh = neighbor_list(np.zeros((0, 3)), np.eye(3), True, 3.0)
    assert s.shape == (0,) and sh.shape == (0, 3)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="linearly dependent"):
        neighbor_list(np.zeros((1, 3)), np.array([[1, 0, 0], [2, 0, 0], [0, 0, 1.0]]), True, 3.0)
    with pytest.raises(ValueError, match="cutoff"):
        neighbor_list(np.zeros((1, 3)), np.eye(3), True, -1.0)
    with pytest.raises(ValueError, match="finite"):
        neighbor_list(np.full((1, 3), np.nan), np.eye(3), True, 3.0)


def test_graph_from_atoms_labels_and_edge_vectors():
    atoms = bulk("NaCl", "rocksalt", a=5.64)
    atoms.rattle(0.05, seed=1)
    rng = np.random.default_rng(0)
    f = rng.normal(size=(2, 3))
    voigt = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]) * 1e-3
    atoms.calc = SinglePointCalculator(atoms, energy=-7.5, forces=f, stress=voigt)
    g = graph_from_atoms(atoms, 5.0, key="NaCl/0")
    assert g.energy == -7.5 and g.key == "NaCl/0"
    np.testing.assert_allclose(g.forces, f)
    np.testing.assert_allclose(
        g.stress, [[1e-3, 6e-3, 5e-3], [6e-3, 2e-3, 4e-3], [5e-3, 4e-3, 3e-3]]
    )
    # Edge vectors agree with ASE's own neighbour list distances (multiset).
    from ase.neighborlist import neighbor_list as ase_nl

    d_ase = np.sort(ase_nl("d", atoms, 5.0))
    vec = g.positions[g.senders] + g.shifts @ g.cell - g.positions[g.receivers]
    np.testing.assert_allclose(np.sort(np.linalg.norm(vec, axis=1)), d_ase, atol=1e-10)


def test_voigt_to_matrix_orders():
    m = voigt_to_matrix([1, 2, 3, 4, 5, 6])
    assert m[1, 2] == 4 and m[0, 2] == 5 and m[0, 1] == 6 and np.allclose(m, m.T)
    np.testing.assert_array_equal(voigt_to_matrix(np.arange(9.0)), np.arange(9.0).reshape(3, 3))
    with pytest.raises(ValueError):
        voigt_to_matrix(np.zeros(4))


def test_graph_without_cell_is_molecule():
    atoms = Atoms("H2O", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])
    g = graph_from_atoms(atoms, 1.2)
    assert g.energy is None and g.n_edge == 4  # two O-H bonds, both directions; H-H is 1.5 A
