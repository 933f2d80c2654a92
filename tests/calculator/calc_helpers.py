"""Helpers for the calculator tests: the Morse reference (ASE implements it too) and structures."""

from __future__ import annotations

import numpy as np

# Copper-like Morse parameters (eV, A); cutoff rcut2 * r0 = 4.42 A.
MORSE = dict(epsilon=0.4, r0=2.6, rho0=4.0, rcut1=1.3, rcut2=1.7)


def ase_morse():
    from ase.calculators.morse import MorsePotential

    return MorsePotential(**MORSE)


def structures():
    """Bulk (strained, rattled), slab, molecule and a 1-atom cell much smaller than the cutoff."""
    from ase import Atoms
    from ase.build import bulk, fcc111

    rng = np.random.default_rng(0)
    b = bulk("Cu", "fcc", a=3.6) * (2, 2, 2)
    b.set_cell(b.cell[:] @ (np.eye(3) + 0.02 * rng.standard_normal((3, 3))), scale_atoms=True)
    b.rattle(0.05, seed=1)
    s = fcc111("Cu", size=(2, 2, 2), a=3.6, vacuum=5.0)
    s.rattle(0.05, seed=2)
    m = Atoms("Cu4", positions=[[0, 0, 0], [2.4, 0.1, 0], [0.2, 2.5, 0.1], [0.1, 0.2, 2.6]])
    t = bulk("Cu", "fcc", a=3.55)
    t.set_cell(t.cell[:] @ np.diag([1.02, 0.99, 1.0]), scale_atoms=True)
    return {"bulk": b, "slab": s, "molecule": m, "tiny_cell": t}


def random_orthogonal(seed: int, improper: bool) -> np.ndarray:
    """A random rotation, composed with the inversion when ``improper``."""
    from scipy.spatial.transform import Rotation

    r = Rotation.random(random_state=seed).as_matrix()
    return -r if improper else r
