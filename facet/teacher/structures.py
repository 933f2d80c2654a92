"""Starting structures for the SevenNet-0-labelled datasets (sample and distillation sets).

Three sources, each giving :class:`MaterialSpec` records (an ASE ``Atoms`` plus provenance):

* pymatgen's bundled real Materials Project structures (``pymatgen/util/structures/*.json``);
  ordered structures of at most ``max_atoms`` sites are used, the rest are listed as skipped;
* ASE's ``dcdft`` collection: the 71 elemental crystals of the Delta benchmark
  (Lejaeghere et al., Science 351, aad3000 (2016));
* common prototypes with chemically sensible element substitutions (rock salt, CsCl, zinc
  blende, wurtzite, fluorite / anti-fluorite, cubic perovskite, spinel, CdI2-type and
  2H-MoS2-type layers, L1_2 intermetallics).

Prototype lattice constants are set from covalent radii (Cordero et al., Dalton Trans. 2008,
2832, as tabulated in ``ase.data.covalent_radii``): the cell is scaled isotropically so that the
closest pair of atoms sits exactly at the sum of its covalent radii and every other pair is
farther. The teacher's energy-volume scan (``facet.teacher.common``) then refines the volume.

Nothing here imports facet or torch; it runs in the teacher environment.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms
from ase.build import bulk
from ase.collections import dcdft
from ase.data import atomic_numbers, covalent_radii
from ase.geometry import get_distances
from ase.spacegroup import crystal


@dataclass(frozen=True)
class MaterialSpec:
    """One starting material: ``atoms`` (primitive or small cell) and where it came from."""

    name: str  # e.g. "rocksalt:NaCl", "dcdft:Cu", "pymatgen:SrTiO3.json"
    source: str  # "pymatgen-bundled" | "ase-dcdft" | "prototype"
    atoms: Atoms = field(compare=False, repr=False)
    prototype: str = ""
    radius_scaled: bool = False  # True if the cell was scaled from covalent radii


def scale_to_covalent_radii(atoms: Atoms) -> Atoms:
    """Isotropically rescale the cell so that min_ij d_ij / (r_i + r_j) = 1 (minimum image)."""
    atoms = atoms.copy()
    pos = atoms.get_positions()
    _, dist = get_distances(pos, pos, cell=atoms.cell, pbc=True)
    radii = covalent_radii[atoms.numbers]
    ratio = dist / (radii[:, None] + radii[None, :])
    np.fill_diagonal(ratio, np.inf)
    # A one-atom cell has no pair inside the cell: compare with its periodic images instead.
    if len(atoms) == 1 or not np.isfinite(ratio).any():
        lengths = atoms.cell.lengths()
        ratio = np.array([lengths.min() / (2 * radii[0])])
    factor = 1.0 / float(ratio.min())
    atoms.set_cell(atoms.cell[:] * factor, scale_atoms=True)
    return atoms


# --- prototype builders: each takes element symbols, returns Atoms at an arbitrary scale ----------


def _rocksalt(a: str, x: str) -> Atoms:
    return bulk(a + x, "rocksalt", a=5.0)


def _cscl(a: str, x: str) -> Atoms:
    return bulk(a + x, "cesiumchloride", a=3.5)


def _zincblende(a: str, x: str) -> Atoms:
    return bulk(a + x, "zincblende", a=5.5)


def _wurtzite(a: str, x: str) -> Atoms:
    return bulk(a + x, "wurtzite", a=3.2, c=3.2 * np.sqrt(8 / 3), u=0.375)


def _fluorite(a: str, x: str) -> Atoms:
    """AX2 with A on the fcc sites; anti-fluorite A2X is ``_fluorite(X, A)``."""
    return bulk(a + x + x, "fluorite", a=5.5)


def _perovskite(a: str, b: str, x: str) -> Atoms:
    return crystal([a, b, x], basis=[(0, 0, 0), (0.5, 0.5, 0.5), (0.5, 0.5, 0.0)],
                   spacegroup=221, cellpar=[4.0, 4.0, 4.0, 90, 90, 90], primitive_cell=True)


def _spinel(a: str, b: str, x: str) -> Atoms:
    """AB2X4, Fd-3m origin choice 1: A 8a (0,0,0), B 16d (5/8,5/8,5/8), X 32e (u,u,u), u=0.387.

    Reduced to the 14-atom primitive cell.
    """
    at = crystal([a, b, x], basis=[(0, 0, 0), (0.625, 0.625, 0.625), (0.387, 0.387, 0.387)],
                 spacegroup=227, setting=1, cellpar=[8.0, 8.0, 8.0, 90, 90, 90],
                 primitive_cell=True)
    if len(at) != 14:
        raise RuntimeError(f"spinel {a}{b}2{x}4: expected a 14-atom primitive cell, got {len(at)}")
    return at


def _cdi2(m: str, x: str) -> Atoms:
    """CdI2-type MX2 layer (P-3m1): M 1a (0,0,0), X 2d (1/3,2/3,z) with z = 0.25, c/a = 1.6."""
    return crystal([m, x], basis=[(0, 0, 0), (1 / 3, 2 / 3, 0.25)], spacegroup=164,
                   cellpar=[3.5, 3.5, 5.6, 90, 90, 120])


def _mos2(m: str, x: str) -> Atoms:
    """2H-MoS2-type MX2 (P6_3/mmc): M 2c (1/3,2/3,1/4), X 4f (1/3,2/3,z) with z = 0.621."""
    return crystal([m, x], basis=[(1 / 3, 2 / 3, 0.25), (1 / 3, 2 / 3, 0.621)], spacegroup=194,
                   cellpar=[3.2, 3.2, 12.3, 90, 90, 120])


def _l12(a: str, b: str) -> Atoms:
    """A3B, Cu3Au-type (L1_2): B on the cube corner, A on the face centres."""
    return crystal([b, a], basis=[(0, 0, 0), (0.5, 0.5, 0.0)], spacegroup=221,
                   cellpar=[3.8, 3.8, 3.8, 90, 90, 90])


PROTOTYPE_BUILDERS = {
    "rocksalt": _rocksalt,
    "cscl": _cscl,
    "zincblende": _zincblende,
    "wurtzite": _wurtzite,
    "fluorite": _fluorite,
    "antifluorite": lambda a, x: _fluorite(x, a),  # A2X
    "perovskite": _perovskite,
    "spinel": _spinel,
    "cdi2": _cdi2,
    "mos2": _mos2,
    "l12": _l12,
}


def _cross(left: str, right: str) -> list[tuple[str, ...]]:
    return [(a, x) for a in left.split() for x in right.split()]


# Substitution lists: charge-balanced or known intermetallic combinations (most exist in the
# ICSD / Materials Project with that prototype or a close relative).
PROTOTYPE_SUBSTITUTIONS: dict[str, list[tuple[str, ...]]] = {
    "rocksalt": (
        _cross("Li Na K Rb Cs", "F Cl Br I")
        + _cross("Mg Ca Sr Ba", "O S Se Te")
        + _cross("Mn Fe Co Ni Cd", "O")
        + _cross("Sc Y La Ti Zr Hf V Nb Ta Cr", "N")
        + _cross("Ti Zr Hf V Nb Ta", "C")
        + _cross("Ag", "F Cl Br") + _cross("Pb Sn", "S Se Te") + [("Eu", "O"), ("Ce", "N")]
    ),
    "cscl": (
        _cross("Cs Tl", "Cl Br I")
        + [("Cu", "Zn"), ("Ni", "Al"), ("Fe", "Al"), ("Co", "Al"), ("Mg", "Ag"), ("Ti", "Ni"),
           ("Fe", "Co"), ("Cu", "Pd"), ("Ru", "Al"), ("Au", "Zn"), ("Y", "Cu"), ("Sc", "Ag"),
           ("Li", "Tl"), ("Be", "Cu"), ("Ir", "Al"), ("Mg", "Au")]
    ),
    "zincblende": (
        _cross("B Al Ga In", "N P As Sb")
        + _cross("Zn Cd Hg Be", "S Se Te")
        + _cross("Cu Ag", "Cl Br I") + [("Si", "C"), ("Ge", "C"), ("Mn", "S")]
    ),
    "wurtzite": [("Al", "N"), ("Ga", "N"), ("In", "N"), ("Zn", "O"), ("Zn", "S"), ("Cd", "S"),
                 ("Cd", "Se"), ("Be", "O"), ("Ag", "I"), ("Si", "C"), ("Mg", "Te"), ("Mn", "Se")],
    "fluorite": (
        _cross("Ca Sr Ba Cd Pb Hg", "F")
        + _cross("Zr Hf Ce Th U", "O") + _cross("Sr Ba", "Cl") + [("Pt", "Al"), ("Au", "Al")]
    ),
    "antifluorite": (
        _cross("Li Na K Rb", "O S Se") + _cross("Mg", "Si Ge Sn") + [("Be", "C"), ("Cu", "Se")]
    ),
    "perovskite": (
        [(a, b, "O") for a in "Ca Sr Ba Pb".split() for b in "Ti Zr Hf Sn".split()]
        + [(a, b, "O") for a in "Na K".split() for b in "Nb Ta".split()]
        + [("La", b, "O") for b in "Al Ga Sc Fe Cr Mn Co Ni V".split()] + [("Y", "Al", "O")]
        + [(a, b, x) for a in "Cs Rb".split() for b in "Pb Sn".split() for x in "Cl Br I".split()]
        + [("K", "Mg", "F"), ("K", "Zn", "F"), ("K", "Ni", "F"), ("Na", "Mg", "F"),
           ("Rb", "Ca", "F"), ("Cs", "Ge", "I"), ("Bi", "Fe", "O"), ("Ba", "Ce", "O")]
    ),
    "spinel": (
        [(a, b, "O") for a in "Mg Zn Fe Co Ni Mn".split() for b in "Al Cr Fe Ga".split()]
        + [("Li", "Mn", "O"), ("Li", "Ti", "O"), ("Mg", "V", "O"), ("Zn", "Co", "O"),
           ("Cu", "Cr", "S"), ("Cd", "In", "S"), ("Zn", "Cr", "Se"), ("Mg", "In", "S")]
    ),
    "cdi2": (
        _cross("Ti Zr Hf Sn Pt", "S Se") + _cross("Cd Mg Ca Pb Fe", "I")
        + [("Mg", "Br"), ("Ni", "Te"), ("Co", "Te"), ("Ta", "S"), ("Mn", "I"), ("Ge", "I")]
    ),
    "mos2": _cross("Mo W", "S Se Te") + _cross("Nb Ta", "S Se"),
    "l12": [("Ni", "Al"), ("Cu", "Au"), ("Pt", "Ti"), ("Ni", "Ga"), ("Pd", "Fe"), ("Pt", "Zr"),
            ("Al", "Sc"), ("Ni", "Mn"), ("Cu", "Pd"), ("Ir", "Nb"), ("Rh", "V"), ("Ag", "Mg"),
            ("Ni", "Si"), ("Co", "W"), ("Au", "Cu"), ("Sn", "Ti")],
}


def prototype_spec(proto: str, *elems: str) -> MaterialSpec:
    """One prototype with the given elements, named e.g. ``"perovskite:Ba-Ti-O"``."""
    for el in elems:
        if el not in atomic_numbers:
            raise ValueError(f"prototype {proto}: unknown element {el!r} in {elems}")
    atoms = scale_to_covalent_radii(PROTOTYPE_BUILDERS[proto](*elems))
    return MaterialSpec(f"{proto}:{'-'.join(elems)}", "prototype", atoms, proto, True)


def prototype_specs() -> list[MaterialSpec]:
    """Every prototype x substitution, in a fixed order."""
    return [prototype_spec(proto, *elems)
            for proto, subs in PROTOTYPE_SUBSTITUTIONS.items() for elems in subs]


def dcdft_specs() -> list[MaterialSpec]:
    """ASE's dcdft elemental crystals (all-electron PBE equilibrium volumes), in table order."""
    return [MaterialSpec(f"dcdft:{name}", "ase-dcdft", dcdft[name], "elemental")
            for name in dcdft.names]


def pymatgen_bundled_specs(max_atoms: int) -> tuple[list[MaterialSpec], dict[str, str]]:
    """pymatgen's bundled MP structures; returns (used, {skipped file: reason})."""
    import pymatgen.util
    from pymatgen.core import Structure
    from pymatgen.io.ase import AseAtomsAdaptor

    folder = os.path.join(os.path.dirname(pymatgen.util.__file__), "structures")
    used, skipped = [], {}
    for path in sorted(glob.glob(os.path.join(folder, "*.json"))):
        name = os.path.basename(path)
        struct = Structure.from_file(path)
        if not struct.is_ordered:
            skipped[name] = "disordered (partial occupancies)"
        elif len(struct) > max_atoms:
            skipped[name] = f"{len(struct)} sites > max_atoms = {max_atoms}"
        else:
            atoms = AseAtomsAdaptor.get_atoms(struct)
            atoms = Atoms(atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=True)
            used.append(MaterialSpec(f"pymatgen:{name}", "pymatgen-bundled", atoms, "mp-bundled"))
    if not used and not skipped:
        raise FileNotFoundError(f"no bundled structures found in {folder}")
    return used, skipped


def supercell_for(atoms: Atoms, min_atoms: int, max_atoms: int) -> Atoms:
    """Repeat along the currently shortest cell vector until len >= min_atoms (<= max_atoms)."""
    reps = np.ones(3, dtype=int)
    while len(atoms) * reps.prod() < min_atoms:
        lengths = atoms.cell.lengths() * reps
        axis = int(np.argmin(lengths))
        if len(atoms) * reps.prod() * (reps[axis] + 1) // reps[axis] > max_atoms:
            break
        reps[axis] += 1
    return atoms.repeat(tuple(int(r) for r in reps))
