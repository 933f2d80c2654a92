"""Dynamics: relaxation and molecular dynamics driven by a Facet model (or any model following
the model contract, e.g. :class:`MorsePotential`).

* ASE drivers, one structure at a time: :mod:`facet.dynamics.relax` (FIRE with the Fréchet cell
  filter; structure readers and writers) and :mod:`facet.dynamics.md` (NVE, Langevin NVT, MTK NPT).
* Compiled loops over many structures at once: :mod:`facet.dynamics.fire` (batched FIRE) and
  :mod:`facet.dynamics.jaxmd` (jax-md integrators). Each runs a whole loop inside ``jax.jit`` with
  static shapes: Verlet neighbour lists with a skin and a fixed edge capacity
  (:mod:`facet.dynamics.neighbors`) are rebuilt outside the compiled loop only when needed.
* :mod:`facet.dynamics.ensembles`: the one table of MD ensembles (``nve``, ``nvt``, ``npt``) with
  each engine's integrator; :mod:`facet.dynamics.potential`: a model as a pure function of its
  state; :mod:`facet.dynamics.pair`: a Morse pair potential equal to ASE's (a reference model).
"""

from .ensembles import ENSEMBLES, Ensemble
from .fire import BatchedFIRE, BatchedRelaxResult, FireConfig, relax_batched
from .jaxmd import JaxMD, JaxMDConfig, JaxMDResult, run_jax_md
from .md import MDRun, MDSettings, energy_drift, run_md
from .pair import MorsePotential, analytic_predict
from .relax import RelaxResult, read_structures, relax, relax_many, to_atoms, write_relaxed

__all__ = [
    "ENSEMBLES",
    "Ensemble",
    "BatchedFIRE",
    "BatchedRelaxResult",
    "FireConfig",
    "relax_batched",
    "JaxMD",
    "JaxMDConfig",
    "JaxMDResult",
    "run_jax_md",
    "MDRun",
    "MDSettings",
    "energy_drift",
    "run_md",
    "MorsePotential",
    "analytic_predict",
    "RelaxResult",
    "read_structures",
    "relax",
    "relax_many",
    "to_atoms",
    "write_relaxed",
]
