"""Builders of small MPTrj-layout files from real pymatgen ``Structure.as_dict()`` output."""

from __future__ import annotations

import json

import numpy as np


def random_structure(rng, n_atoms: int, elements=("Li", "O", "Fe", "Si", "Na", "Cl")):
    """A triclinic pymatgen Structure with atoms on a jittered grid (never closer than ~1.2 A)."""
    from pymatgen.core import Lattice, Structure

    a, b, c = rng.uniform(4.0, 6.0, 3)
    alpha, beta, gamma = rng.uniform(75, 105, 3)
    lattice = Lattice.from_parameters(a, b, c, alpha, beta, gamma)
    grid = np.array(np.meshgrid(*[np.arange(3)] * 3, indexing="ij")).reshape(3, -1).T / 3.0
    frac = grid[rng.choice(len(grid), n_atoms, replace=False)] + rng.uniform(
        -0.03, 0.03, (n_atoms, 3)
    )
    species = [str(rng.choice(elements)) for _ in range(n_atoms)]
    return Structure(lattice, species, frac)


def mptrj_frame(rng, structure, *, magmom=True) -> dict:
    """A frame dict with every MPTrj key; numbers are random but in physical ranges."""
    n = len(structure)
    e = float(rng.uniform(-8, -3) * n)
    stress = rng.normal(0, 20, (3, 3))
    stress = 0.5 * (stress + stress.T)  # kBar, VASP sign
    return {
        "structure": structure.as_dict(),
        "uncorrected_total_energy": e,
        "corrected_total_energy": e - 0.7,
        "energy_per_atom": (e - 0.7) / n,
        "ef_per_atom": -1.0,
        "e_per_atom_relaxed": e / n,
        "ef_per_atom_relaxed": -1.0,
        "force": rng.normal(0, 0.5, (n, 3)).tolist(),
        "stress": stress.tolist(),
        "magmom": rng.uniform(0, 3, n).tolist() if magmom else None,
        "bandgap": 0.0,
        "mp_id": None,  # filled by build_mptrj
    }


def build_mptrj(rng, n_materials: int, frames_per_material: int = 3) -> dict:
    data = {}
    for m in range(n_materials):
        mid = f"mp-{1000 + m}"
        s = random_structure(rng, int(rng.integers(1, 7)))
        frames = {}
        for k in range(frames_per_material):
            s2 = s.copy()
            s2.perturb(0.05)
            fr = mptrj_frame(rng, s2, magmom=bool(k % 2))
            fr["mp_id"] = mid
            frames[f"task{m}-calc0-{k}"] = fr
        data[mid] = frames
    return data


def write_json(path, data) -> str:
    with open(path, "w") as fh:
        json.dump(data, fh)
    return str(path)
