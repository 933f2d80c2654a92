"""Helpers for the dynamics tests: a Morse potential that ASE also implements (the reference)
and small test structures."""

from __future__ import annotations

import numpy as np

# Copper-like Morse parameters (eV, A); cutoff rcut2 * r0 = 4.42 A.
MORSE = dict(epsilon=0.4, r0=2.6, rho0=4.0, rcut1=1.3, rcut2=1.7)


def ase_morse():
    from ase.calculators.morse import MorsePotential

    return MorsePotential(**MORSE)


def strained_rattled_cu(seed: int, cubic: bool = False):
    """An fcc Cu-like cell (8 atoms) with a random 3 % strain and 0.05 A rattle."""
    from ase.build import bulk

    rng = np.random.default_rng(seed)
    if cubic:
        atoms = bulk("Cu", "fcc", a=3.7, cubic=True).repeat((1, 1, 2))
    else:
        atoms = bulk("Cu", "fcc", a=3.5) * (2, 2, 2)
    strain = np.eye(3) + 0.03 * rng.standard_normal((3, 3))
    atoms.set_cell(atoms.cell[:] @ strain, scale_atoms=True)
    atoms.rattle(0.05, seed=seed)
    return atoms


def slab(seed: int):
    from ase.build import fcc111

    atoms = fcc111("Cu", size=(2, 2, 2), a=3.6, vacuum=5.0)
    atoms.rattle(0.05, seed=seed)
    return atoms


def cluster(seed: int):
    from ase import Atoms

    rng = np.random.default_rng(seed)
    pos = np.array([[0, 0, 0], [2.5, 0, 0], [0, 2.5, 0], [0, 0, 2.5], [2.5, 2.5, 0.0]])
    return Atoms("Cu5", positions=pos + 0.1 * rng.standard_normal(pos.shape))
