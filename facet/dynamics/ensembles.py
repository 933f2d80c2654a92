"""The MD ensembles: one table of names, each with its integrator for each engine.

An ensemble name (``MDSettings.ensemble``, ``JaxMDConfig.ensemble``, ``facet md --ensemble``)
means the same physics on both engines:

* ``nve``: velocity Verlet. ASE: :class:`ase.md.verlet.VelocityVerlet`; jax-md:
  ``simulate.nve``.
* ``nvt``: Langevin thermostat, friction in 1/fs. ASE: :class:`ase.md.langevin.Langevin`
  (Vanden-Eijnden and Ciccotti, Chem. Phys. Lett. 429, 310 (2006)) with the centre of mass held
  by :class:`ase.constraints.FixCom` (unless the structure has constraints of its own); jax-md:
  ``simulate.nvt_langevin`` (the BAOAB scheme of Davidchack, Ouldridge and Tretyakov,
  J. Chem. Phys. 142, 144114 (2015)).
* ``npt``: isotropic Martyna-Tobias-Klein barostat with Nosé-Hoover chains
  (:class:`ase.md.nose_hoover_chain.IsotropicMTKNPT`; J. Chem. Phys. 101, 4177 (1994)),
  thermostat and barostat damping times 100 and 1000 time steps, pressure in GPa. ASE only.

An engine's builder is ``None`` where it has no such integrator; :func:`builder` refuses it with
one line naming the ensembles that engine has.

``jax_md`` is imported inside its builders: importing it took 32-40 s on one loaded core of the
development machine (``python -X importtime -c "import jax_md"``; 20 s of it in
``jax_md.rigid_body``), which every ``facet`` command and the ASE engine would otherwise pay.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from ase import units
from ase.md.langevin import Langevin
from ase.md.nose_hoover_chain import IsotropicMTKNPT
from ase.md.verlet import VelocityVerlet

from ..errors import InputError

__all__ = ["Ensemble", "ENSEMBLES", "ENGINES", "builder", "centre_of_mass_at_rest", "names"]

ENGINES = ("ase", "jax_md")


@dataclass(frozen=True)
class Ensemble:
    """One ensemble: its integrator builder per engine (None: not available there).

    * ``ase(atoms, settings, rng) -> ase.md.MolecularDynamics`` (``settings``: ``MDSettings``);
    * ``jax_md(force_fn, shift_fn, dt, kT, gamma) -> (init_fn, step_fn)``.
    """

    description: str
    ase: Callable[..., Any] | None
    jax_md: Callable[..., Any] | None


def centre_of_mass_at_rest(atoms) -> bool:
    """Whether ``atoms`` (more than one atom) has zero total momentum: NVE and MTK NPT keep it
    so, and then 3 of the 3N degrees of freedom never carry kinetic energy (both engines'
    temperatures count 3N - 3)."""
    return len(atoms) > 1 and float(np.abs(atoms.get_momenta().sum(axis=0)).max()) < 1e-9


def _ase_nve(atoms, s, rng):
    return VelocityVerlet(atoms, timestep=s.timestep_fs * units.fs)


def _ase_nvt(atoms, s, rng):
    # The centre of mass is held by the caller's FixCom constraint (facet.dynamics.md), not by
    # Langevin's own ``fixcm``: that kept the kinetic energy of all 3N degrees of freedom at the
    # target, so the 3N - 3 that move ran N / (N - 1) too hot (a water molecule at 450 K for a
    # 300 K target), and it is deprecated since ASE 3.28.
    return Langevin(atoms, timestep=s.timestep_fs * units.fs, temperature_K=s.temperature_K,
                    friction=s.friction_per_fs / units.fs, fixcm=False, rng=rng)


def _ase_npt(atoms, s, rng):
    if not atoms.pbc.all():
        raise InputError(
            f"NPT needs a structure periodic in all three directions (pbc = {atoms.pbc.tolist()});"
            " use nve or nvt for a molecule or a slab"
        )
    dt = s.timestep_fs * units.fs
    return IsotropicMTKNPT(atoms, timestep=dt, temperature_K=s.temperature_K,
                           pressure_au=s.pressure_GPa * units.GPa, tdamp=100 * dt,
                           pdamp=1000 * dt)


def _jax_md_nve(force_fn, shift_fn, dt, kt, gamma):
    from jax_md import simulate  # lazy: 32-40 s to import (module docstring)

    return simulate.nve(force_fn, shift_fn, dt)


def _jax_md_nvt(force_fn, shift_fn, dt, kt, gamma):
    from jax_md import simulate  # lazy: 32-40 s to import (module docstring)

    # Centring would mix the padding atoms into the centre-of-mass velocity.
    return simulate.nvt_langevin(force_fn, shift_fn, dt, kt, gamma=gamma, center_velocity=False)


#: Ensemble name -> :class:`Ensemble`. The names are pinned (saved settings use them).
ENSEMBLES: dict[str, Ensemble] = {
    "nve": Ensemble("velocity Verlet", ase=_ase_nve, jax_md=_jax_md_nve),
    "nvt": Ensemble("Langevin thermostat", ase=_ase_nvt, jax_md=_jax_md_nvt),
    "npt": Ensemble("isotropic MTK barostat, Nose-Hoover chains", ase=_ase_npt, jax_md=None),
}


def names(engine: str) -> list[str]:
    """The ensembles ``engine`` (``"ase"`` or ``"jax_md"``) can run, sorted."""
    return sorted(k for k, e in ENSEMBLES.items() if getattr(e, engine) is not None)


def builder(name: str, engine: str) -> Callable[..., Any]:
    """The integrator builder of ensemble ``name`` on ``engine``; ``ValueError`` naming the
    ensembles that engine has otherwise."""
    if engine not in ENGINES:
        raise ValueError(f"unknown MD engine {engine!r}; available: {', '.join(ENGINES)}")
    make = getattr(ENSEMBLES[name], engine) if name in ENSEMBLES else None
    if make is None:
        raise ValueError(f"unknown ensemble {name!r} for the {engine} engine; available: "
                         f"{', '.join(names(engine))}")
    return make
