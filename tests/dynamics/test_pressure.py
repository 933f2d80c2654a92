"""Relaxation under external pressure and at fixed cell, in the three places a user sets them:
``facet.dynamics.relax.relax(scalar_pressure=...)`` (ASE), ``FireConfig(scalar_pressure=...)``
(batched) and ``facet relax --pressure GPa / --fixed-cell`` (CLI).

At a converged relaxation under pressure ``p`` the stress is ``sigma = -p I`` (ASE's sign: a
compressed crystal has negative stress), so ``-tr(sigma)/3 = p``; the volume is below the
zero-pressure volume for ``p > 0`` and above it for ``p < 0``. The Morse model has ASE's own
implementation as the reference for the stress."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from ase import units
from ase.io import read, write
from dyn_helpers import MORSE, ase_morse

from facet.cli import main
from facet.dynamics import BatchedFIRE, FireConfig, analytic_predict
from facet.dynamics.relax import relax

P_GPA = 3.0
P = P_GPA * units.GPa  # eV/A^3


def _cell(seed: int):
    """A 4-atom cubic Cu-like cell with a random 3 % strain and a 0.05 A rattle."""
    from ase.build import bulk

    rng = np.random.default_rng(seed)
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
    atoms.set_cell(atoms.cell[:] @ (np.eye(3) + 0.03 * rng.standard_normal((3, 3))),
                   scale_atoms=True)
    atoms.rattle(0.05, seed=seed)
    return atoms


def _pressure(atoms):
    """``-tr(sigma)/3`` from ASE's Morse (independent of the model that relaxed it), eV/A^3."""
    ref = atoms.copy()
    ref.calc = ase_morse()
    return -np.trace(ref.get_stress(voigt=False)) / 3.0, ref.get_stress(voigt=False)


def _pressure_tolerance(atoms, fmax):
    # FrechetCellFilter's cell rows are V (sigma + p I) / N: converged means each below fmax.
    return 2.0 * fmax * len(atoms) / atoms.get_volume()


@pytest.fixture(scope="module")
def ase_results():
    start = _cell(0)
    out = {p: relax(start, ase_morse(), fmax=1e-3, steps=600, scalar_pressure=p) for p in
           (-P, 0.0, P)}
    return start, out


def test_ase_relax_under_pressure(ase_results):
    start, out = ase_results
    for p, res in out.items():
        assert res.converged, p
        got, full = _pressure(res.atoms)
        assert got == pytest.approx(p, abs=_pressure_tolerance(res.atoms, 1e-3)), (p, got)
        # Hydrostatic: the whole tensor is -p I, not only its trace.
        np.testing.assert_allclose(full, -p * np.eye(3), atol=_pressure_tolerance(res.atoms, 1e-3))
    v = {p: r.atoms.get_volume() for p, r in out.items()}
    # A 3 GPa step changes this crystal's volume by ~2 %; the order is the physics.
    assert v[P] < 0.99 * v[0.0] and v[-P] > 1.01 * v[0.0], v
    # The enthalpy E + pV, not the energy, is what was minimised: at +p the relaxed
    # structure has a higher energy than the zero-pressure minimum.
    assert out[P].energy > out[0.0].energy and out[-P].energy > out[0.0].energy


def test_ase_relax_fixed_cell_keeps_the_cell(ase_results):
    start, _ = ase_results
    res = relax(start, ase_morse(), fmax=1e-3, steps=600, relax_cell=False)
    assert res.converged
    np.testing.assert_allclose(res.atoms.cell[:], start.cell[:], rtol=0, atol=1e-12)
    assert np.abs(res.atoms.get_forces()).max() < 1e-3
    # The fixed-cell minimum is not the cell-relaxed one: the stress stays.
    assert np.abs(_pressure(res.atoms)[0]) > 10 * _pressure_tolerance(start, 1e-3)


def test_a_pressure_the_fixed_cell_would_ignore_is_refused(ase_results, morse64):
    """No silent wrong answer: a pressure acts only through a relaxed cell."""
    from ase.build import molecule

    from facet.errors import InputError

    start, _ = ase_results
    with pytest.raises(InputError, match=r"relax_cell=False.*would be ignored"):
        relax(start, ase_morse(), relax_cell=False, scalar_pressure=P)
    water = molecule("H2O")
    water.center(vacuum=5.0)
    with pytest.raises(InputError, match=r"not periodic in 3D.*would be ignored"):
        relax(water, ase_morse(), scalar_pressure=P)
    fire = BatchedFIRE(morse64, FireConfig(scalar_pressure=P), dtype="float64",
                       predict=analytic_predict)
    with pytest.raises(InputError, match=r"structure 0 .*relax_cell=False.*would be ignored"):
        fire.relax([start], relax_cell=False)


def _batched_relax(morse64, start, p, relax_cell=True):
    fire = BatchedFIRE(morse64, FireConfig(scalar_pressure=p), dtype="float64",
                       predict=analytic_predict)
    with jax.enable_x64(True):
        return fire.relax([start], fmax=1e-3, max_steps=600, relax_cell=relax_cell)


# Each pressure is its own compiled program (~5 s): +p runs by default, -p (and the batched
# CLI at -p) in the default CLI test below, the rest under ``slow``.
@pytest.mark.parametrize("sign", [1.0, pytest.param(-1.0, marks=pytest.mark.slow)])
def test_batched_relax_under_pressure_follows_ase(morse64, ase_results, sign):
    start, out = ase_results
    p = sign * P
    res = _batched_relax(morse64, start, p)
    assert res.converged[0]
    got = res.atoms[0]
    ref = out[p].atoms
    # Same FIRE trajectory as ASE's FrechetCellFilter(scalar_pressure=p), so the same minimum.
    assert res.steps[0] == out[p].steps
    np.testing.assert_allclose(got.cell[:], ref.cell[:], atol=1e-8)
    np.testing.assert_allclose(got.positions, ref.positions, atol=1e-8)
    pressure, full = _pressure(got)
    assert pressure == pytest.approx(p, abs=_pressure_tolerance(got, 1e-3))
    # The stress reported by the batched result is the model's (same sign convention).
    np.testing.assert_allclose(got.get_stress(voigt=False), full, atol=1e-10)
    v0 = out[0.0].atoms.get_volume()
    assert (got.get_volume() - v0) * sign < -0.01 * v0


@pytest.mark.slow
def test_batched_fixed_cell_keeps_the_cell(morse64):
    start = _cell(2)
    res = _batched_relax(morse64, start, 0.0, relax_cell=False)
    assert res.converged[0]
    np.testing.assert_allclose(res.atoms[0].cell[:], start.cell[:], rtol=0, atol=1e-12)
    assert np.abs(res.atoms[0].positions - start.positions).max() > 1e-3  # the atoms moved


@pytest.fixture(scope="module")
def morse_cli_model():
    from facet.calculator import MODELS, register_model
    from facet.dynamics import MorsePotential

    register_model("test-morse-p", lambda dtype: MorsePotential(**MORSE, dtype=dtype))
    yield "test-morse-p"
    MODELS.pop("test-morse-p", None)


def _cli(src, out, *args):
    rc = main(["relax", str(src), "--model", "test-morse-p", "--fmax", "0.002", "--steps", "800",
               "--no-progress", "-o", str(out), *args])
    assert rc == 0
    return read(out)


def test_cli_pressure_in_gpa_and_fixed_cell(tmp_path, morse_cli_model, ase_results):
    start, out = ase_results
    src = tmp_path / "in.extxyz"
    write(src, start)
    # --pressure is in GPa. One compiled calculator per call (~3 s each), so: +p through ASE in
    # float64, -p through the batched loop (float32), and --fixed-cell.
    got = _cli(src, tmp_path / "plus.extxyz", f"--pressure={P_GPA}", "--dtype", "float64")
    assert got.info["converged"]
    pressure, full = _pressure(got)
    assert pressure / units.GPa == pytest.approx(
        P_GPA, abs=_pressure_tolerance(got, 0.002) / units.GPa)
    # The stress written with the structure is the one the model reports there.
    np.testing.assert_allclose(got.get_stress(voigt=False), full, atol=1e-9)
    assert got.get_volume() == pytest.approx(out[P].atoms.get_volume(), rel=1e-3)
    assert got.get_volume() < 0.99 * out[0.0].atoms.get_volume()

    got = _cli(src, tmp_path / "minus.extxyz", "--batched", f"--pressure={-P_GPA}")
    assert got.info["converged"]
    pressure, full = _pressure(got)
    assert pressure / units.GPa == pytest.approx(-P_GPA, abs=0.05)
    np.testing.assert_allclose(got.get_stress(voigt=False), full, atol=1e-5)
    assert got.get_volume() == pytest.approx(out[-P].atoms.get_volume(), rel=1e-3)
    assert got.get_volume() > 1.01 * out[0.0].atoms.get_volume()

    got = _cli(src, tmp_path / "fixed.extxyz", "--fixed-cell")
    assert got.info["converged"]
    np.testing.assert_allclose(got.cell[:], read(src).cell[:], rtol=0, atol=1e-12)
    assert np.abs(got.positions - read(src).positions).max() > 1e-3
    # a pressure that the fixed cell would ignore is one line and exit 2, nothing written
    bad = tmp_path / "bad.extxyz"
    assert main(["relax", str(src), "--model", "test-morse-p", "--no-progress", "-o", str(bad),
                 "--fixed-cell", f"--pressure={P_GPA}"]) == 2
    assert not bad.exists()
