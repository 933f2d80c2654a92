"""Molecular dynamics: the compiled jax-md loop follows ASE's velocity Verlet step for step,
conserves energy over 1000 steps with one compilation, thermostats replicas to the target
temperature; the ASE path writes its trajectory and log and its barostat responds to pressure."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from ase import units
from ase.build import bulk
from ase.io import read
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary
from ase.md.verlet import VelocityVerlet
from dyn_helpers import MORSE, ase_morse

from facet.dynamics import MorsePotential, analytic_predict
from facet.dynamics.jaxmd import JaxMD, JaxMDConfig
from facet.dynamics.md import MDSettings, energy_drift, run_md


def _hot_cu(temperature_k=600.0, seed=0, n=2):
    atoms = bulk("Cu", "fcc", a=3.6) * (n, n, n)
    MaxwellBoltzmannDistribution(
        atoms, temperature_K=temperature_k, rng=np.random.default_rng(seed)
    )
    Stationary(atoms)
    return atoms


@pytest.fixture(scope="module")
def nve32():
    return JaxMD(
        MorsePotential(**MORSE),
        JaxMDConfig(ensemble="nve", timestep_fs=2.0, skin=0.3, log_interval=10),
        predict=analytic_predict,
    )


def test_jax_md_matches_ase_velocity_verlet(morse64):
    atoms = _hot_cu(1500.0, seed=1)
    md = JaxMD(
        morse64,
        JaxMDConfig(ensemble="nve", timestep_fs=2.0, skin=0.1, log_interval=5),
        dtype="float64",
        predict=analytic_predict,
    )
    with jax.enable_x64(True):
        res = md.run(atoms, 60)
    assert res.n_rebuilds >= 1  # the rebuild path is exercised and exact
    ref = atoms.copy()
    ref.calc = ase_morse()
    VelocityVerlet(ref, timestep=2.0 * units.fs).run(60)
    # Round-off differences grow chaotically (~1e-8 after 60 steps at 1500 K).
    np.testing.assert_allclose(res.atoms[0].positions, ref.positions, atol=1e-6)
    np.testing.assert_allclose(res.atoms[0].get_momenta(), ref.get_momenta(), atol=1e-5)
    np.testing.assert_allclose(res.potential_energy[-1, 0], ref.get_potential_energy(), rtol=1e-8)
    assert np.abs(ref.positions - atoms.positions).max() > 0.03  # atoms really moved


def test_jax_md_and_ase_nve_report_the_same_temperature(morse64):
    """NVE from momenta with the centre of mass at rest: both engines count 3N - 3 degrees of
    freedom (the jax-md engine counted 3N, 1/N low: 3 % for these 32 atoms)."""
    atoms = _hot_cu(900.0, seed=4)
    md = JaxMD(morse64, JaxMDConfig(ensemble="nve", timestep_fs=2.0, log_interval=5),
               dtype="float64", predict=analytic_predict)
    with jax.enable_x64(True):
        res = md.run(atoms, 10)
    ref = run_md(atoms, ase_morse(), 10, MDSettings(ensemble="nve", timestep_fs=2.0,
                                                    log_interval=5))
    np.testing.assert_allclose(res.temperature[:, 0], ref.temperature, rtol=1e-6)
    n = len(atoms)
    np.testing.assert_allclose(res.temperature[:, 0],
                               2 * res.kinetic_energy[:, 0] / ((3 * n - 3) * units.kB),
                               rtol=1e-12)


def test_jax_md_nve_conserves_energy_with_one_compilation(nve32):
    atoms = _hot_cu(600.0, seed=2)
    res = nve32.run(atoms, 1000)
    assert nve32.compile_count() == 1
    assert res.n_rebuilds >= 2
    assert list(res.steps[:3]) == [0, 10, 20] and res.steps[-1] == 1000
    total = (res.potential_energy + res.kinetic_energy)[:, 0]
    drift = energy_drift(res.steps * 2.0, total, len(atoms))
    # float32, 2 fs steps, 2 ps: measured |drift| ~ 1e-4 eV/atom/ps; bound generously.
    assert abs(drift) < 2e-3, drift
    assert np.std(total) / len(atoms) < 1e-3
    # Energy really flows between kinetic and potential (not a frozen system).
    assert np.std(res.kinetic_energy[:, 0]) / len(atoms) > 5e-3
    # A second run of another length reuses the program.
    nve32.run(atoms, 37)
    assert nve32.compile_count() == 1


@pytest.mark.slow
def test_jax_md_langevin_replicas_reach_temperature():
    target = 400.0
    md = JaxMD(
        MorsePotential(**MORSE),
        JaxMDConfig(ensemble="nvt", timestep_fs=2.0, temperature_K=target, friction_per_fs=0.05),
        predict=analytic_predict,
    )
    replicas = [_hot_cu(50.0, seed=s) for s in range(6)]
    res = md.run(replicas, 600, seed=3)
    late = res.steps >= 200
    mean_t = res.temperature[late].mean()
    assert res.temperature.shape[1] == 6
    assert abs(mean_t - target) < 0.15 * target, mean_t
    assert res.temperature[0].mean() < 100.0  # started cold


def test_ase_nve_writes_and_conserves(tmp_path):
    atoms = _hot_cu(600.0, seed=4)
    settings = MDSettings(ensemble="nve", timestep_fs=2.0, log_interval=10)
    run = run_md(
        atoms,
        ase_morse(),
        200,
        settings,
        trajectory=tmp_path / "md.traj",
        logfile=tmp_path / "md.log",
    )
    assert len(run.time_fs) == 21 and run.time_fs[-1] == pytest.approx(400.0)
    assert abs(energy_drift(run.time_fs, run.total_energy, len(atoms))) < 2e-3
    frames = read(tmp_path / "md.traj", index=":")
    assert len(frames) == 21
    np.testing.assert_allclose(frames[-1].positions, run.atoms.positions)
    log = (tmp_path / "md.log").read_text().strip().splitlines()
    assert len(log) == 22 and "Etot" in log[0]


@pytest.mark.slow
def test_ase_npt_compresses_under_pressure():
    atoms = bulk("Cu", "fcc", a=3.6) * (2, 2, 2)
    v0 = atoms.get_volume()
    settings = MDSettings(
        ensemble="npt", timestep_fs=2.0, temperature_K=100.0, pressure_GPa=20.0, log_interval=10
    )
    run = run_md(atoms, ase_morse(), 300, settings)
    assert np.nanmean(run.volume[len(run.volume) // 2 :]) < 0.97 * v0
    with pytest.raises(ValueError, match="unknown ensemble 'nvx'"):
        run_md(atoms, ase_morse(), 1, MDSettings(ensemble="nvx"))
