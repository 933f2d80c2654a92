"""Relax a few crystals with Facet's shipped model, first one at a time through ASE, then all
at once in one compiled loop.

    python scripts/example_relax.py [--model NAME_OR_PATH] [--steps N]

``--model`` takes a registered name (``default``: the shipped model, distilled from SevenNet-0),
a run or checkpoint folder written by ``facet train``, or a preset (random weights: the
machinery runs the same way, but the structures it finds are not physical).
"""

import argparse

import numpy as np
from ase.build import bulk

from facet import FacetCalculator
from facet.dynamics import relax_batched
from facet.dynamics.relax import relax

parser = argparse.ArgumentParser()
parser.add_argument("--model", default="default",
                    help="registered name, run/checkpoint folder or preset (default: %(default)s)")
parser.add_argument("--steps", type=int, default=100)
args = parser.parse_args()

# Three strained and rattled crystals.
rng = np.random.default_rng(0)
structures = []
for atoms in (
    bulk("Si", "diamond", a=5.43),
    bulk("NaCl", "rocksalt", a=5.64),
    bulk("Cu", "fcc", a=3.61, cubic=True),
):
    atoms.set_cell(
        atoms.cell[:] @ (np.eye(3) + 0.02 * rng.standard_normal((3, 3))), scale_atoms=True
    )
    atoms.rattle(0.05, seed=1)
    structures.append(atoms)

# One at a time through ASE (FIRE + FrechetCellFilter); the calculator compiles once per shape
# bucket and is reused for every structure.
calc = FacetCalculator(model=args.model)
for atoms in structures:
    result = relax(atoms, calc, fmax=0.05, steps=args.steps)
    print(
        f"{atoms.get_chemical_formula():8s} E = {result.energy:10.4f} eV "
        f"after {result.steps:3d} steps (converged: {result.converged})"
    )

# All at once in one compiled JAX loop (same FIRE trajectory for each structure).
batched = relax_batched(structures, calc.model, fmax=0.05, max_steps=args.steps)
for atoms, e, steps in zip(batched.atoms, batched.energies, batched.steps, strict=True):
    print(f"{atoms.get_chemical_formula():8s} E = {e:10.4f} eV after {steps:3d} steps (batched)")
