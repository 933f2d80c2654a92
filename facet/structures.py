"""Small fixed structures without symmetry, for checks of a model's physics.

Equivariance checks need inputs in which no symmetry can hide an error: a cell with all
lattice angles and lengths distinct and four different elements at generic positions, and an
open molecule. They are shared by the model test battery (``tests/model``) and
``facet.studies.model_equivariance``, so that the measured figure and the tests see the same input.
"""

from __future__ import annotations

import numpy as np

__all__ = ["skewed_cell", "small_molecule"]


def skewed_cell():
    """Si, O, Fe, Li in a skewed triclinic cell (lengths 3.3-3.7 A, angles 82-89 degrees,
    periodic), as ``ase.Atoms``; the nearest pair is 1.94 A apart."""
    from ase import Atoms

    cell = np.array([[3.3, 0.1, 0.2], [0.3, 3.5, 0.1], [-0.2, 0.4, 3.7]])
    frac = np.array(
        [[0.02, 0.05, 0.01], [0.48, 0.52, 0.07], [0.13, 0.55, 0.49], [0.61, 0.07, 0.53]]
    )
    return Atoms([14, 8, 26, 3], scaled_positions=frac, cell=cell, pbc=True)


def small_molecule():
    """A 5-atom open cluster (C, O, H, H, N; bond lengths 1-1.5 A), not periodic, as
    ``ase.Atoms``."""
    from ase import Atoms

    pos = np.array(
        [
            [0.0, 0.0, 0.0],
            [1.21, 0.1, -0.05],
            [-0.55, 0.93, 0.12],
            [-0.5, -0.9, 0.3],
            [0.3, 0.2, 1.4],
        ]
    )
    return Atoms([6, 8, 1, 1, 7], positions=pos, pbc=False)
