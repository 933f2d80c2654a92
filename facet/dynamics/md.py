"""Molecular dynamics through ASE: NVE, Langevin NVT and MTK NPT, with trajectory and log files.

Integrators: the ``ase`` builders of :data:`facet.dynamics.ensembles.ENSEMBLES` (``nve``
velocity Verlet, ``nvt`` Langevin, ``npt`` isotropic MTK barostat).

For a loop compiled end to end (no Python per step) use :mod:`facet.dynamics.jaxmd` (jax-md).

Temperatures count the degrees of freedom that carry kinetic energy: ``3N`` less those the
structure's constraints remove (ASE's ``get_number_of_degrees_of_freedom``), less 3 while the
centre of mass is at rest (Langevin NVT holds it with :class:`ase.constraints.FixCom`; NVE and
MTK NPT conserve a zero total momentum), as LAMMPS's ``compute temp`` does.

Energy conservation of an NVE run is summarised by :func:`energy_drift`: the slope of a
least-squares line through the total energy per atom, in eV/atom/ps.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from ase import units
from ase.constraints import FixCom
from ase.io import Trajectory, write
from ase.md import MDLogger
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary

from ..errors import InputError
from .ensembles import ENSEMBLES, builder, centre_of_mass_at_rest

__all__ = ["MDSettings", "MDRun", "ENSEMBLES", "run_md", "energy_drift"]


@dataclass(frozen=True)
class MDSettings:
    """MD settings in user units: fs, K, GPa, 1/fs.

    ``seed`` fixes the initial Maxwell-Boltzmann velocities (drawn only when the structure has
    no momenta and ``temperature_K > 0``) and the Langevin noise.
    """

    ensemble: str = "nve"
    timestep_fs: float = 1.0
    temperature_K: float = 300.0
    friction_per_fs: float = 0.01
    pressure_GPa: float = 0.0
    log_interval: int = 10
    seed: int = 0


@dataclass
class MDRun:
    """Result of :func:`run_md`: the final structure and the energies every ``log_interval``.

    ``time_fs`` (R,), ``potential_energy`` / ``kinetic_energy`` (R,) eV, ``temperature`` (R,) K,
    ``volume`` (R,) A^3 (NaN for non-periodic structures).
    """

    atoms: Any
    time_fs: np.ndarray
    potential_energy: np.ndarray
    kinetic_energy: np.ndarray
    temperature: np.ndarray
    volume: np.ndarray

    @property
    def total_energy(self) -> np.ndarray:
        return self.potential_energy + self.kinetic_energy


def run_md(
    atoms: Any,
    calculator: Any,
    steps: int,
    settings: MDSettings = MDSettings(),
    *,
    trajectory: str | os.PathLike | None = None,
    logfile: str | os.PathLike | None = None,
    progress: Callable[[int], None] | None = None,
) -> MDRun:
    """Run ``steps`` MD steps of a copy of ``atoms`` with ``calculator``.

    Records (and writes to ``trajectory``, ASE ``.traj`` or anything :func:`ase.io.write`
    appends, e.g. ``.extxyz``, and to ASE's MD log ``logfile``) step 0, every ``log_interval``-th
    step and always the last step, so the final record is the final structure. ``progress`` is
    called with the number of steps done after every step.
    """
    make = builder(settings.ensemble, "ase")
    if steps < 0:
        raise InputError(f"steps must be >= 0, got {steps}")
    if settings.log_interval < 1:
        raise InputError(f"log_interval must be >= 1, got {settings.log_interval}")
    atoms = atoms.copy()
    atoms.calc = calculator
    rng = np.random.default_rng(settings.seed)
    if not np.any(atoms.get_momenta()) and settings.temperature_K > 0:
        MaxwellBoltzmannDistribution(atoms, temperature_K=settings.temperature_K, rng=rng)
        Stationary(atoms)
    held = settings.ensemble == "nvt" and not atoms.constraints and len(atoms) > 1
    if held:
        atoms.set_constraint(FixCom())
    dof = _degrees_of_freedom(atoms, settings.ensemble)
    dyn = make(atoms, settings, rng)
    rows: list[tuple[float, ...]] = []

    def record():
        epot = atoms.get_potential_energy()
        ekin = atoms.get_kinetic_energy()
        vol = atoms.get_volume() if atoms.pbc.all() else np.nan
        t = dyn.get_time() / units.fs
        rows.append((t, epot, ekin, 2.0 * ekin / (dof * units.kB) if dof else 0.0, vol))

    observers: list[Callable[[], None]] = [record]
    traj = None
    if trajectory is not None:
        if str(trajectory).endswith(".traj"):
            traj = Trajectory(str(trajectory), "w", atoms)
            observers.append(traj.write)
        else:
            if os.path.exists(trajectory):
                os.remove(trajectory)
            observers.append(lambda: write(str(trajectory), atoms, append=True))
    logger = None
    if logfile is not None:
        logger = MDLogger(dyn, atoms, str(logfile), header=True, stress=False, peratom=True)
        observers.append(logger)
    for fn in observers:
        dyn.attach(fn, interval=settings.log_interval)
    if progress is not None:
        dyn.attach(lambda: progress(dyn.nsteps), interval=1)
    try:
        dyn.run(steps)
        if steps % settings.log_interval:  # the last step is always recorded and written
            for fn in observers:
                fn()
    finally:
        if traj is not None:
            traj.close()
        if logger is not None:
            logger.close()
        if held:  # the structure returned carries only the user's constraints
            atoms.set_constraint()
    arr = np.asarray(rows, dtype=np.float64).reshape(-1, 5)
    return MDRun(atoms, arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3], arr[:, 4])


def _degrees_of_freedom(atoms, ensemble: str) -> int:
    """Degrees of freedom that carry kinetic energy (module docstring): ASE's count (3N less
    what the constraints remove, FixCom included), less 3 for a zero total momentum that NVE
    or NPT conserves without a constraint."""
    conserved_at_rest = (ensemble in ("nve", "npt") and not atoms.constraints
                         and centre_of_mass_at_rest(atoms))
    return max(int(atoms.get_number_of_degrees_of_freedom()) - 3 * conserved_at_rest, 0)


def energy_drift(time_fs: np.ndarray, total_energy: np.ndarray, n_atoms: int) -> float:
    """Least-squares slope of the total energy per atom, eV/atom/ps."""
    t_ps = np.asarray(time_fs, np.float64) / 1000.0
    e = np.asarray(total_energy, np.float64) / n_atoms
    if t_ps.size < 2 or np.ptp(t_ps) == 0:
        raise ValueError("energy_drift needs at least two records at different times")
    return float(np.polyfit(t_ps, e, 1)[0])
