"""Thermostat and barostat units and directions, fast enough for every run of the suite.

* Langevin friction: on free particles (no forces) a Langevin thermostat relaxes the kinetic
  energy as ``<K>(t) = K_eq + (K_0 - K_eq) exp(-2 gamma t)`` exactly, so the decay rate measures
  the friction in 1/fs and the plateau the temperature in K (ASE path and jax-md path).
* ``facet.dynamics.md`` builds ASE's integrators with ASE's units (fs, K, eV/A^3): the run equals
  one built by hand from ASE's documented units, step for step.
* MTK barostat: a crystal pre-compressed to the pressure ``p`` stays put under an external ``p``
  (a wrong unit in ``p`` compresses or expands it), and expands when the pressure is released.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest
from ase import Atoms, units
from ase.build import bulk
from ase.calculators.calculator import Calculator, all_changes
from ase.constraints import FixCom
from dyn_helpers import MORSE, ase_morse

from facet.dynamics import MorsePotential, analytic_predict
from facet.dynamics.jaxmd import JaxMD, JaxMDConfig
from facet.dynamics.md import MDSettings, run_md


class FreeParticles(Calculator):
    """No interaction at all: zero energy, forces and stress (an ideal gas)."""

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        n = len(self.atoms)
        self.results = {"energy": 0.0, "free_energy": 0.0, "forces": np.zeros((n, 3)),
                        "stress": np.zeros(6)}


def _gas(n_side: int, spacing: float = 12.0):
    """``n_side^3`` Cu atoms on a grid ``spacing`` A apart (beyond the Morse cutoff), no PBC."""
    g = np.arange(n_side) * spacing
    pos = np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3)
    return Atoms(f"Cu{len(pos)}", positions=pos)


def _momenta(atoms, temperature_k, seed):
    """Maxwell-Boltzmann momenta with the centre-of-mass motion removed."""
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary

    MaxwellBoltzmannDistribution(atoms, temperature_K=temperature_k,
                                 rng=np.random.default_rng(seed))
    Stationary(atoms)
    return atoms


# -- ASE Langevin (facet.dynamics.md, ensemble "nvt") -------------------------------------


def test_ase_langevin_friction_is_per_fs():
    """At T = 0 the kinetic energy decays as exp(-2 gamma t), gamma in 1/fs."""
    atoms = _momenta(_gas(3), 600.0, seed=0)
    friction, dt = 0.01, 2.0
    run = run_md(atoms, FreeParticles(), 50, MDSettings(
        ensemble="nvt", timestep_fs=dt, temperature_K=0.0, friction_per_fs=friction,
        log_interval=5))
    ratio = run.kinetic_energy / run.kinetic_energy[0]
    expected = np.exp(-2.0 * friction * run.time_fs)
    # ASE's Langevin step reproduces exp(-gamma dt) to O((gamma dt)^3) per step.
    np.testing.assert_allclose(ratio, expected, rtol=1e-3)
    assert ratio[-1] < 0.2  # the decay is real over these 100 fs


def test_ase_langevin_reaches_its_temperature():
    """From cold, 64 free atoms reach the target temperature in K (the centre of mass is held:
    the recorded temperature counts 3N - 3 degrees of freedom)."""
    atoms = _momenta(_gas(4), 5.0, seed=1)
    target, friction = 500.0, 0.05
    run = run_md(atoms, FreeParticles(), 600, MDSettings(
        ensemble="nvt", timestep_fs=2.0, temperature_K=target, friction_per_fs=friction,
        log_interval=4, seed=2))
    assert run.temperature[0] < 10.0
    late = run.time_fs > 10.0 / friction  # 20 relaxation times of the kinetic energy
    mean = run.temperature[late].mean()
    # ~130 independent samples of a quantity with 10 % spread: the mean to ~1 %.
    assert mean == pytest.approx(target, rel=0.04), mean


@pytest.mark.parametrize("n_atoms", [2, 3])
def test_ase_nvt_reports_the_temperature_of_a_small_molecule(n_atoms):
    """A dimer or triatomic in NVT: the kinetic energy per moving degree of freedom (3N - 3 once
    the centre of mass is held) is k_B T / 2 at the target, and so is the recorded temperature.
    Langevin's deprecated ``fixcm`` (a FutureWarning since ASE 3.28) held the kinetic energy of
    all 3N degrees of freedom at the target instead, so the moving ones ran N / (N - 1) too hot
    (a water molecule at 450 K for 300 K). The centre of mass is held by ASE's ``FixCom``, and
    the returned structure carries no constraint the user did not set."""
    import warnings

    atoms = Atoms(f"Cu{n_atoms}", positions=[(0, 0, 0), (0, 0, 12.0), (0, 12.0, 0)][:n_atoms])
    target, friction = 300.0, 0.05
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        run = run_md(atoms, FreeParticles(), 20_000, MDSettings(
            ensemble="nvt", timestep_fs=2.0, temperature_K=target, friction_per_fs=friction,
            log_interval=10, seed=3))
    late = run.time_fs > 20.0 / friction
    # ~1,900 records 20 fs apart (the kinetic energy decorrelates in 1 / (2 gamma) = 10 fs), each
    # with a relative spread sqrt(2 / (3N - 3)): the mean to about 1.5 %.
    assert run.temperature[late].mean() == pytest.approx(target, rel=0.06)
    assert np.abs(run.atoms.get_momenta().sum(axis=0)).max() < 1e-10
    assert not run.atoms.constraints


def test_ase_nve_temperature_counts_the_centre_of_mass_at_rest():
    """NVE from Maxwell-Boltzmann momenta with the centre of mass at rest: the recorded
    temperature is 2 E_kin / ((3N - 3) k_B) (momentum is conserved, so those 3 degrees of
    freedom never carry energy), as in LAMMPS's ``compute temp``."""
    atoms = _gas(2)
    run = run_md(atoms, FreeParticles(), 10, MDSettings(ensemble="nve", temperature_K=300.0,
                                                        log_interval=5, seed=1))
    n = len(atoms)
    np.testing.assert_allclose(run.temperature,
                               2 * run.kinetic_energy / ((3 * n - 3) * units.kB), rtol=1e-12)


def test_ase_nvt_and_npt_use_ases_units():
    """run_md's integrators equal ones built by hand from ASE's documented units."""
    from ase.md.langevin import Langevin
    from ase.md.nose_hoover_chain import IsotropicMTKNPT

    start = _momenta(bulk("Cu", "fcc", a=3.55) * (2, 2, 2), 300.0, seed=3)
    start.rattle(0.05, seed=3)
    s = MDSettings(ensemble="nvt", timestep_fs=2.0, temperature_K=350.0, friction_per_fs=0.02,
                   pressure_GPa=2.0, log_interval=1, seed=4)
    ref = start.copy()
    ref.calc = ase_morse()
    ref.set_constraint(FixCom())
    Langevin(ref, timestep=2.0 * units.fs, temperature_K=350.0, friction=0.02 / units.fs,
             fixcm=False, rng=np.random.default_rng(4)).run(15)
    got = run_md(start, ase_morse(), 15, s).atoms
    np.testing.assert_allclose(got.positions, ref.positions, atol=1e-12)
    np.testing.assert_allclose(got.get_momenta(), ref.get_momenta(), atol=1e-12)

    ref = start.copy()
    ref.calc = ase_morse()
    dt = 2.0 * units.fs
    IsotropicMTKNPT(ref, timestep=dt, temperature_K=350.0, pressure_au=2.0 * units.GPa,
                    tdamp=100 * dt, pdamp=1000 * dt).run(15)
    got = run_md(start, ase_morse(), 15, MDSettings(**{**s.__dict__, "ensemble": "npt"})).atoms
    np.testing.assert_allclose(got.cell[:], ref.cell[:], atol=1e-12)
    np.testing.assert_allclose(got.positions, ref.positions, atol=1e-12)
    assert not np.allclose(got.cell[:], start.cell[:], atol=1e-6)  # the barostat acted


# -- MTK barostat direction and units (facet.dynamics.md, ensemble "npt") -----------------


def _lattice_at_pressure(p_gpa: float) -> float:
    """fcc lattice constant at which ASE's Morse crystal has -tr(sigma)/3 = p (T = 0)."""
    from scipy.optimize import brentq

    def excess(a):
        at = bulk("Cu", "fcc", a=a)
        at.calc = ase_morse()
        return -np.trace(at.get_stress(voigt=False)) / 3.0 / units.GPa - p_gpa

    return brentq(excess, 3.3, 3.8, xtol=1e-12)


@pytest.fixture(scope="module")
def compressed():
    """An 8-atom crystal compressed to 4 GPa, and its volume."""
    atoms = bulk("Cu", "fcc", a=_lattice_at_pressure(4.0)) * (2, 2, 2)
    return atoms, atoms.get_volume()


def _npt(atoms, p_gpa, steps=60):
    # 1 K: the kinetic pressure (~1e-3 GPa) is negligible and the barostat, whose mass scales
    # with kT, responds within ~10 steps.
    s = MDSettings(ensemble="npt", timestep_fs=2.0, temperature_K=1.0, pressure_GPa=p_gpa,
                   log_interval=2, seed=5)
    return run_md(atoms, ase_morse(), steps, s).volume


def test_npt_holds_a_crystal_at_its_own_pressure(compressed):
    atoms, v0 = compressed
    vol = _npt(atoms, 4.0)
    # Measured: within 1e-4 of V0 over the run; a 4 GPa imbalance moves it by ~4 %.
    assert np.abs(vol / v0 - 1.0).max() < 1e-3, vol / v0


@pytest.mark.parametrize("p_gpa,direction", [(0.0, 1.0), (8.0, -1.0)])
def test_npt_volume_moves_with_the_pressure(compressed, p_gpa, direction):
    atoms, v0 = compressed
    vol = _npt(atoms, p_gpa)
    # Releasing the pressure expands the crystal, raising it compresses it.
    assert direction * (vol.mean() / v0 - 1.0) > 0.01, vol / v0
    assert direction * (vol / v0 - 1.0).min() > -1e-4


# -- jax-md Langevin (facet.dynamics.jaxmd, ensemble "nvt") --------------------------------------


def test_jax_md_langevin_friction_and_temperature():
    """From rest, free particles under BAOAB Langevin follow <T>(t) = T (1 - exp(-2 gamma t))
    exactly in expectation; 8 replicas of 27 atoms average the noise."""
    target, friction, dt = 400.0, 0.01, 2.0
    with jax.enable_x64(True):
        md = JaxMD(MorsePotential(**MORSE, dtype="float64"),
                   JaxMDConfig(ensemble="nvt", timestep_fs=dt, temperature_K=target,
                               friction_per_fs=friction, log_interval=5),
                   dtype="float64", predict=analytic_predict)
        # 20 steps first: a wrong unit in kT or gamma shows here, before a long run that such
        # an error would fill with neighbour-list rebuilds.
        short = md.run([_gas(3) for _ in range(8)], 20, seed=6)
        t_short = short.steps * dt
        np.testing.assert_allclose(short.temperature.mean(axis=1),
                                   target * (1.0 - np.exp(-2.0 * friction * t_short)),
                                   atol=0.15 * target)
        res = md.run([_gas(3) for _ in range(8)], 300, seed=6)
    t_fs = res.steps * dt
    n_dof = 3 * 27 * 8
    measured = res.temperature.mean(axis=1)
    expected = target * (1.0 - np.exp(-2.0 * friction * t_fs))
    # Per record the mean over 648 degrees of freedom has a relative spread sqrt(2/648) = 6 %.
    np.testing.assert_allclose(measured, expected, atol=5 * np.sqrt(2.0 / n_dof) * target)
    early = (t_fs > 0) & (t_fs <= 60)
    assert np.all(measured[early] < 0.8 * target)  # still warming: the friction is per fs
    late = t_fs >= 250
    assert measured[late].mean() == pytest.approx(target, rel=0.05)


def test_cli_npt_pressure_is_in_gpa(compressed, tmp_path):
    """``facet md --ensemble npt --pressure 4`` (GPa) holds the crystal compressed to 4 GPa."""
    from ase.io import read, write

    from facet.calculator import MODELS, register_model
    from facet.cli import main

    atoms, v0 = compressed
    write(tmp_path / "in.extxyz", atoms)
    register_model("test-morse-npt", lambda dtype: MorsePotential(**MORSE, dtype=dtype))
    try:
        rc = main(["md", str(tmp_path / "in.extxyz"), "--model", "test-morse-npt", "--dtype",
                   "float64", "--ensemble", "npt", "--pressure", "4", "--temperature", "1",
                   "--timestep", "2", "--steps", "40", "--log-interval", "2",
                   "--trajectory", str(tmp_path / "md.traj"), "--log", str(tmp_path / "md.log"),
                   "-o", str(tmp_path / "out.extxyz")])
    finally:
        MODELS.pop("test-morse-npt", None)
    assert rc == 0
    vol = np.array([a.get_volume() for a in read(tmp_path / "md.traj", index=":")])
    assert len(vol) == 21
    assert np.abs(vol / v0 - 1.0).max() < 1e-3, vol / v0


def test_jax_md_refuses_steps_longer_than_the_skin():
    """Atoms that cross half the skin in one step (here ~1 A per 2 fs) can never have a
    complete list: the run stops with a message instead of rebuilding forever."""
    atoms = _momenta(_gas(2), 2e6, seed=7)
    md = JaxMD(MorsePotential(**MORSE), JaxMDConfig(ensemble="nve", timestep_fs=2.0, skin=0.5),
               predict=analytic_predict)
    with pytest.raises(ValueError, match=r"MD step 0: an atom moves more than half"):
        md.run(atoms, 5)
