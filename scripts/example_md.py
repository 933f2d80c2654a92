"""Molecular dynamics with Facet: ASE Langevin NVT with a trajectory, then NVE compiled in JAX.

    python scripts/example_md.py [--model PATH_OR_NAME] [--steps 200]

Without a trained model a preset with random weights is used (the dynamics then only
demonstrates the machinery).
"""

import argparse

import numpy as np
from ase.build import bulk
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary

from facet import FacetCalculator
from facet.dynamics.jaxmd import JaxMDConfig, run_jax_md
from facet.dynamics.md import MDSettings, energy_drift, run_md

parser = argparse.ArgumentParser()
parser.add_argument("--model", default="facet-s", help="checkpoint/run directory or model name")
parser.add_argument("--steps", type=int, default=200)
args = parser.parse_args()

atoms = bulk("Si", "diamond", a=5.43, cubic=True) * (2, 2, 2)  # 64 atoms
calc = FacetCalculator(model=args.model)

# 1. Langevin NVT at 600 K through ASE, writing a trajectory and a log every 10 steps.
nvt = run_md(
    atoms,
    calc,
    args.steps,
    MDSettings(ensemble="nvt", timestep_fs=1.0, temperature_K=600.0, log_interval=10),
    trajectory="si_nvt.traj",
    logfile="si_nvt.log",
)
print(f"NVT: mean temperature {nvt.temperature[len(nvt.temperature) // 2 :].mean():.0f} K")

# 2. NVE from the end of the NVT run, the whole loop compiled with jax-md.
final = nvt.atoms
res = run_jax_md(
    final,
    calc.model,
    args.steps,
    config=JaxMDConfig(ensemble="nve", timestep_fs=1.0, log_interval=10),
)
total = res.potential_energy[:, 0] + res.kinetic_energy[:, 0]
drift = energy_drift(res.steps * 1.0, total, len(final))
print(
    f"NVE (jax-md): {args.steps} steps in {res.wall_time:.1f} s (compilation included), "
    f"drift {drift:.2e} eV/atom/ps, {res.n_rebuilds} neighbour-list rebuilds"
)

# A fresh start at 300 K for comparison: Maxwell-Boltzmann velocities, then ASE NVE.
start = atoms.copy()
MaxwellBoltzmannDistribution(start, temperature_K=300.0, rng=np.random.default_rng(0))
Stationary(start)
nve = run_md(start, calc, args.steps, MDSettings(ensemble="nve", timestep_fs=1.0))
print(f"NVE (ASE): drift {energy_drift(nve.time_fs, nve.total_energy, len(start)):.2e} eV/atom/ps")
