"""FacetCalculator: agreement with ASE's Morse calculator through the Facet path, ASE's own
finite differences (forces and stress) and E(3) equivariance with the real network in float64,
extensivity for a cell smaller than the cutoff, and per-atom energies."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from ase.calculators.calculator import PropertyNotImplementedError
from ase.calculators.fd import calculate_numerical_forces, calculate_numerical_stress
from calc_helpers import MORSE, ase_morse, random_orthogonal, structures

from facet import FacetCalculator
from facet.dynamics import MorsePotential


@pytest.fixture(scope="module")
def morse_calc64():
    with jax.enable_x64(True):
        model = MorsePotential(**MORSE, dtype="float64")
    return FacetCalculator(model=model, dtype="float64")


@pytest.fixture(scope="module")
def net_calc64(facet_s64):
    return FacetCalculator(model=facet_s64, dtype="float64")


@pytest.mark.parametrize("name", ["bulk", "slab", "molecule", "tiny_cell"])
def test_matches_ase_morse(morse_calc64, name):
    atoms = structures()[name]
    ref = atoms.copy()
    ref.calc = ase_morse()
    atoms.calc = morse_calc64
    np.testing.assert_allclose(atoms.get_potential_energy(), ref.get_potential_energy(), rtol=1e-12)
    np.testing.assert_allclose(
        atoms.get_potential_energies(), ref.get_potential_energies(), atol=1e-12
    )
    np.testing.assert_allclose(atoms.get_forces(), ref.get_forces(), atol=1e-11)
    if atoms.pbc.all():
        np.testing.assert_allclose(atoms.get_stress(), ref.get_stress(), atol=1e-12)
    else:
        with pytest.raises(PropertyNotImplementedError, match="periodic in all three"):
            atoms.get_stress()


def _ionic(seed=0):
    """4 atoms of 3 elements in a strained, rattled triclinic cell."""
    from ase import Atoms

    rng = np.random.default_rng(seed)
    cell = 3.9 * (np.eye(3) + 0.08 * rng.standard_normal((3, 3)))
    frac = np.array([[0, 0, 0], [0.5, 0.5, 0.0], [0.5, 0.0, 0.5], [0.0, 0.5, 0.5]])
    atoms = Atoms("MgO2Si", scaled_positions=frac, cell=cell, pbc=True)
    atoms.rattle(0.1, seed=seed)
    return atoms


def test_forces_and_stress_match_ase_finite_differences(net_calc64):
    atoms = _ionic()
    atoms.calc = net_calc64
    forces, stress = atoms.get_forces(), atoms.get_stress()
    fd_forces = calculate_numerical_forces(atoms, eps=1e-4)
    fd_stress = calculate_numerical_stress(atoms, eps=1e-5)
    assert np.abs(forces).max() > 1e-2 and np.abs(stress).max() > 1e-4  # non-trivial values
    np.testing.assert_allclose(forces, fd_forces, atol=1e-6 * max(1, np.abs(forces).max()))
    np.testing.assert_allclose(stress, fd_stress, atol=1e-7)
    np.testing.assert_allclose(
        atoms.get_potential_energies().sum(), atoms.get_potential_energy(), rtol=1e-12
    )
    assert net_calc64.compile_count == 1  # every displaced structure reused the same program


@pytest.mark.parametrize("improper", [False, True], ids=["rotation", "rotation+inversion"])
def test_equivariance(net_calc64, improper):
    atoms = _ionic(seed=2)
    atoms.calc = net_calc64
    e, f, s, ei = (
        atoms.get_potential_energy(),
        atoms.get_forces(),
        atoms.get_stress(voigt=False),
        atoms.get_potential_energies(),
    )
    q = random_orthogonal(3, improper)
    moved = atoms.copy()
    moved.set_cell(atoms.cell[:] @ q.T, scale_atoms=False)
    moved.positions = atoms.positions @ q.T
    moved.calc = net_calc64
    np.testing.assert_allclose(moved.get_potential_energy(), e, rtol=1e-9)
    np.testing.assert_allclose(moved.get_potential_energies(), ei, atol=1e-9)
    np.testing.assert_allclose(moved.get_forces(), f @ q.T, atol=1e-9)
    np.testing.assert_allclose(moved.get_stress(voigt=False), q @ s @ q.T, atol=1e-10)


def test_cell_smaller_than_cutoff_is_extensive(net_calc64):
    """A 1-atom cell (2.5 A vectors, cutoff > 5 A) equals its 2x2x2 supercell per atom."""
    from ase.build import bulk

    prim = bulk("Cu", "fcc", a=3.55)
    prim.set_cell(prim.cell[:] @ np.diag([1.03, 0.98, 1.0]), scale_atoms=True)
    assert np.linalg.norm(prim.cell[:], axis=1).max() < net_calc64.model.cutoff / 1.9
    sup = prim * (2, 2, 2)
    prim.calc, sup.calc = net_calc64, net_calc64
    e1, s1 = prim.get_potential_energy(), prim.get_stress()
    np.testing.assert_allclose(sup.get_potential_energy(), 8 * e1, rtol=1e-10)
    np.testing.assert_allclose(sup.get_stress(), s1, atol=1e-10)
    np.testing.assert_allclose(sup.get_forces(), 0.0, atol=1e-10)  # every atom is a centre
    assert np.abs(s1).max() > 1e-4


@pytest.mark.slow
def test_slab_and_molecule_with_the_network(net_calc64):
    """Non-periodic directions: translating a molecule anywhere, or a slab along its normal,
    changes nothing; a slab has no stress."""
    from ase.build import fcc111

    slab = fcc111("Cu", size=(1, 1, 3), a=3.6, vacuum=4.0)
    slab.rattle(0.05, seed=1)
    slab.calc = net_calc64
    e, f = slab.get_potential_energy(), slab.get_forces()
    up = slab.copy()
    up.positions[:, 2] += 7.3  # beyond the cell: no image along z
    up.calc = net_calc64
    np.testing.assert_allclose(up.get_potential_energy(), e, rtol=1e-10)
    np.testing.assert_allclose(up.get_forces(), f, atol=1e-10)
    np.testing.assert_allclose(f.sum(axis=0), 0.0, atol=1e-10)  # no external force
    with pytest.raises(PropertyNotImplementedError):
        slab.get_stress()
