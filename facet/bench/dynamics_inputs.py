"""The structures of the dynamics benchmark (:mod:`facet.bench.dynamics`): strained and rattled
Si diamond cells for the MD and relaxation-step timings, small Materials Project structures for
time to convergence, and many small cells for batched relaxation. Deterministic from the seed."""

from __future__ import annotations

import numpy as np

#: Atoms of the Si cells of :func:`si_cells` (the ``md`` and ``relax_step`` sizes).
NATOMS = [8, 64, 216]


def si_cells(rattle: float, strain: float, seed: int = 0):
    from ase.build import bulk

    rng = np.random.default_rng(seed)
    out = []
    for n in (1, 2, 3):
        a = bulk("Si", "diamond", a=5.43, cubic=True) * (n, n, n)
        a.set_cell(a.cell[:] @ (np.eye(3) + strain * rng.standard_normal((3, 3))), scale_atoms=True)
        a.rattle(rattle, seed=seed + n)
        out.append(a)
    return out  # 8, 64, 216 atoms


def mp_structures(n: int, seed: int = 0):
    """Small Materials Project structures bundled with pymatgen, strained 2 % and rattled."""
    from pymatgen.io.ase import AseAtomsAdaptor
    from pymatgen.util.testing import PymatgenTest

    rng = np.random.default_rng(seed)
    names = ["Si", "LiFePO4", "CsCl", "SrTiO3", "NaFePO4", "TiO2", "Li2O", "K2O2", "Graphite"]
    out = []
    for name in names:
        try:
            s = PymatgenTest.get_structure(name)
        except Exception:  # noqa: BLE001 - a name missing in this pymatgen version
            continue
        if len(s) > 10:  # peers take seconds per step on one busy core
            continue
        a = AseAtomsAdaptor.get_atoms(s)
        a.set_cell(a.cell[:] @ (np.eye(3) + 0.02 * rng.standard_normal((3, 3))), scale_atoms=True)
        a.rattle(0.05, seed=len(out))
        a.info["name"] = name
        out.append(a)
        if len(out) == n:
            break
    return out


def small_structures(n: int, seed: int = 0):
    """``n`` strained and rattled small cells (2-8 atoms) of Si, Cu, NaCl and MgO."""
    from ase.build import bulk

    rng = np.random.default_rng(seed)
    protos = [
        bulk("Si", "diamond", a=5.43),
        bulk("Cu", "fcc", a=3.6),
        bulk("NaCl", "rocksalt", a=5.64),
        bulk("MgO", "rocksalt", a=4.21),
        bulk("Si", "diamond", a=5.43, cubic=True),
    ]
    out = []
    for k in range(n):
        a = protos[k % len(protos)].copy()
        a.set_cell(a.cell[:] @ (np.eye(3) + 0.02 * rng.standard_normal((3, 3))), scale_atoms=True)
        a.rattle(0.05, seed=k)
        out.append(a)
    return out
