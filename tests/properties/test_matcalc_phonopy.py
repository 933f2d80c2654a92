"""Material properties through matcalc and phonopy with FacetCalculator (the shipped model, in
float64), each checked against finite differences of the calculator itself: elastic constants
against central differences of its stress, the EOS bulk modulus against the curvature of its
energy, phonopy's force constants against central differences of its forces."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.filters import FrechetCellFilter
from ase.optimize import BFGS
from ase.units import GPa

pytest.importorskip("matcalc")
pytest.importorskip("phonopy")

# Voigt index -> the (a, b) component of the symmetric strain tensor
VOIGT = [(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]


@pytest.fixture(scope="module")
def calc():
    from facet import FacetCalculator

    return FacetCalculator("default", dtype="float64")


def _relaxed(atoms: Atoms, calc) -> Atoms:
    atoms = atoms.copy()
    atoms.calc = calc
    BFGS(FrechetCellFilter(atoms), logfile=None).run(fmax=1e-6, steps=200)
    return atoms


def _strained(atoms: Atoms, calc, j: int, h: float, relax_ions: bool) -> np.ndarray:
    """Voigt stress (eV/A^3, ASE sign) of ``atoms`` under Voigt strain ``j`` of size ``h``
    (engineering shear: the tensor component is h/2)."""
    eps = np.zeros((3, 3))
    a, b = VOIGT[j]
    eps[a, b] = eps[b, a] = h if a == b else h / 2
    s = atoms.copy()
    s.calc = calc
    s.set_cell(atoms.cell.array @ (np.eye(3) + eps), scale_atoms=True)
    if relax_ions:
        BFGS(s, logfile=None).run(fmax=1e-6, steps=200)
    return s.get_stress(voigt=True)


def _fd_elastic(atoms, calc, columns, h=1e-3, relax_ions=False) -> dict[int, np.ndarray]:
    """Columns ``j`` of C (GPa) by central differences of the stress."""
    return {
        j: (
            _strained(atoms, calc, j, h, relax_ions) - _strained(atoms, calc, j, -h, relax_ions)
        )
        / (2 * h)
        / GPa
        for j in columns
    }


def _elastic(structure, calc, relax_ions: bool):
    from matcalc import ElasticityCalc

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ElasticityCalc(
            calc,
            norm_strains=[-0.004, -0.002, 0.002, 0.004],
            shear_strains=[-0.004, -0.002, 0.002, 0.004],
            relax_structure=False,
            relax_deformed_structures=relax_ions,
            fmax=1e-5,
            units_GPa=True,
        ).calc(structure)


def test_cu_elastic_tensor_and_eos_match_finite_differences(calc):
    """Cu (one atom per cell: no internal relaxation): matcalc's full 6x6 tensor against
    central differences of the stress; the Birch-Murnaghan bulk modulus of a +-0.2 % EOS
    against V d2E/dV2 from central differences of the energy, and against K_VRH. (The shipped
    model's E(V) is far from Birch-Murnaghan's shape: wider fits give a different B0, see
    docs/properties.md, so the fit range is kept where the curvature is the equilibrium one.)"""
    from matcalc import EOSCalc

    cu = _relaxed(bulk("Cu", "fcc", a=3.61), calc)
    assert np.abs(cu.get_stress()).max() < 1e-6
    res = _elastic(cu, calc, relax_ions=False)
    c = np.asarray(res["elastic_tensor"].voigt)
    fd = _fd_elastic(cu, calc, range(6))
    c_fd = np.stack([fd[j] for j in range(6)], axis=1)
    # cubic symmetry of the tensor (C11 = C22, C12 = C13, C44 = C55); the model's own
    # stability (C11 > C12) is checked apart, in test_default_model_keeps_fcc_cu_stable
    assert c_fd[0, 0] == pytest.approx(c_fd[1, 1], rel=1e-3)
    assert c_fd[0, 1] == pytest.approx(c_fd[0, 2], rel=1e-3) and c_fd[3, 3] > 0
    np.testing.assert_allclose(c, c_fd, atol=0.02 * np.abs(c_fd).max(), rtol=0)
    k_fd = (c_fd[0, 0] + 2 * c_fd[0, 1]) / 3
    assert res["bulk_modulus_vrh"] == pytest.approx(k_fd, rel=0.02)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        eos = EOSCalc(calc, relax_structure=False, n_points=7, max_abs_strain=0.002).calc(cu)
    v0, h = cu.get_volume(), 1e-3
    e = []
    for x in (-h, 0.0, h):
        s = cu.copy()
        s.calc = calc
        s.set_cell(cu.cell.array * (1 + x), scale_atoms=True)
        e.append(s.get_potential_energy())
    # E(x) at V = V0 (1 + x)^3 with dE/dV = 0 at V0:  d2E/dx2 = 9 V0^2 d2E/dV2
    b_fd = (e[0] - 2 * e[1] + e[2]) / h**2 / (9 * v0) / GPa
    assert eos["bulk_modulus_bm"] == pytest.approx(b_fd, rel=0.01)
    assert b_fd == pytest.approx(k_fd, rel=0.01)  # energy and stress agree


def test_default_model_keeps_fcc_cu_stable(calc):
    """Born stability of fcc Cu at the model's own lattice constant (C11 > |C12|, C44 > 0),
    from central differences of the stress: a physics check of the shipped weights."""
    cu = _relaxed(bulk("Cu", "fcc", a=3.61), calc)
    fd = _fd_elastic(cu, calc, [0, 3])
    c11, c12, c44 = fd[0][0], fd[0][1], fd[3][3]
    assert c11 > abs(c12) and c44 > 0 and c11 + 2 * c12 > 0


@pytest.mark.slow
def test_si_relaxed_ion_elastic_constants_match_finite_differences(calc):
    """Si (two atoms per cell): C44 needs the internal relaxation; matcalc with relaxed
    deformed structures against central differences of the stress after relaxing the ions."""
    si = _relaxed(bulk("Si", "diamond", a=5.43), calc)
    res = _elastic(si, calc, relax_ions=True)
    c = np.asarray(res["elastic_tensor"].voigt)
    fd = _fd_elastic(si, calc, [0, 3], relax_ions=True)
    c11, c12, c44 = fd[0][0], fd[0][1], fd[3][3]
    assert c[0, 0] == pytest.approx(c11, rel=0.02)
    assert c[0, 1] == pytest.approx(c12, rel=0.03)
    assert c[3, 3] == pytest.approx(c44, rel=0.03)
    clamped = _fd_elastic(si, calc, [3], relax_ions=False)[3][3]
    assert clamped > c44 * 1.05  # internal relaxation softens C44 (it is measured)


def test_si_phonopy_force_constants_match_finite_differences(calc):
    """phonopy (through matcalc's PhononCalc, 2x2x2 supercell, 0.01 A displacements): its force
    constants of atom 0 against central differences of the calculator's forces; acoustic
    frequencies at Gamma vanish; the total DOS integrates to 3 modes per atom."""
    from matcalc import PhononCalc

    si = _relaxed(bulk("Si", "diamond", a=5.43), calc)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = PhononCalc(
            calc,
            supercell_matrix=np.diag([2, 2, 2]),
            atom_disp=0.01,
            relax_structure=False,
            write_phonon=False,
        ).calc(si)
    phonon = res["phonon"]
    fc = phonon.force_constants  # (16, 16, 3, 3), eV/A^2
    sc = phonon.supercell
    atoms = Atoms(sc.symbols, cell=sc.cell, scaled_positions=sc.scaled_positions, pbc=True)
    atoms.calc = calc
    h = 0.005
    ref = np.zeros((len(atoms), 3, 3))
    for a in range(3):
        f = []
        for sign in (1, -1):
            d = atoms.copy()
            d.calc = calc
            d.positions[0, a] += sign * h
            f.append(d.get_forces())
        ref[:, a, :] = -(f[0] - f[1]) / (2 * h)
    assert np.abs(ref).max() > 1.0  # a real interaction
    np.testing.assert_allclose(fc[0], ref, atol=0.01 * np.abs(ref).max(), rtol=0)

    phonon.run_qpoints([[0, 0, 0]])
    gamma = phonon.get_qpoints_dict()["frequencies"][0]
    assert np.abs(gamma[:3]).max() < 0.05 and gamma[3:].min() > 5.0  # THz
    phonon.run_mesh([8, 8, 8], is_gamma_center=True)
    phonon.run_total_dos(sigma=0.1)
    dos = phonon.get_total_dos_dict()
    nu, g = dos["frequency_points"], dos["total_dos"]
    assert np.trapezoid(g, nu) == pytest.approx(3 * 2, rel=0.02)

