"""The starting materials of the broad distillation set ``data/distill2`` (ASE + pymatgen only).

:func:`catalog` returns, for a seed and the teacher's element list, a fixed list of
:class:`~facet.teacher.structures.MaterialSpec` of eight kinds (``MaterialSpec.source``):

* ``mp-bulk``: pymatgen's bundled Materials Project structures (ordered, <= 32 sites);
* ``mp-substituted``: the same structures with every element replaced by a chemically similar
  one (same group of the periodic table; any transition metal for a transition metal; any
  lanthanide or actinide for one of those), distinct elements kept distinct;
* ``elemental``: every teacher element as fcc, bcc, hcp, diamond and simple cubic crystals, and
  ASE's ``dcdft`` crystals (the Delta benchmark's, Lejaeghere et al., Science 351, aad3000
  (2016));
* ``prototype``: binary and ternary prototypes (rock salt, CsCl, zinc blende, wurtzite,
  fluorite, anti-fluorite, rutile, NiAs, pyrite, AlB2, perovskite, ReO3, spinel, CdI2, 2H-MoS2,
  L1_2, L1_0, A15, Heusler L2_1, half-Heusler C1_b, ThCr2Si2, chalcopyrite) with random element
  assignments by role (cation, anion, metal, any);
* ``alloy``: random substitutional alloys of 2-3 metals on fcc, bcc or hcp supercells;
* ``vacancy``: a prototype or elemental crystal repeated to at least 8 atoms, one atom removed;
* ``surface``: slabs of elemental fcc (111)/(100), bcc (110), hcp (0001) and rock-salt / zinc-
  blende (100) crystals, 2-4 layers with 6 A of vacuum on each side;
* ``molecule``: ASE's G2 molecules (Curtiss et al., J. Chem. Phys. 106, 1063 (1997)) and a
  homonuclear dimer of every teacher element, each centred in a periodic box with at least
  9 A between images (more than the teacher's 5 A cutoff).

Element coverage: every random draw weighs each candidate element by ``1 / (1 + n)**2``, where
``n`` counts the materials that already hold it, so rare elements are drawn first and every
teacher element ends up in many materials (``docs/datasets.md`` gives the counts).

Lattice constants of built crystals come from contact radii (:func:`contact_scaled`: covalent
radii, van der Waals radii for noble gases, and at least :data:`MIN_VOLUME_PER_ATOM` per atom);
the teacher's volume search (:mod:`facet.teacher.distill2`) then finds each material's own
equilibrium.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np
from ase import Atoms
from ase.build import bcc110, bulk, fcc100, fcc111, hcp0001, surface
from ase.collections import g2
from ase.data import atomic_numbers, covalent_radii, vdw_radii
from ase.geometry import get_distances
from ase.spacegroup import crystal

from facet.teacher.structures import (
    PROTOTYPE_BUILDERS,
    MaterialSpec,
    dcdft_specs,
    pymatgen_bundled_specs,
    supercell_for,
)

NOBLE = ("He", "Ne", "Ar", "Kr", "Xe")
ANIONS = ("O", "S", "Se", "Te", "N", "P", "As", "Sb", "F", "Cl", "Br", "I", "C", "B", "H")
P_BLOCK = ("B", "Al", "Ga", "In", "Tl", "Si", "Ge", "Sn", "Pb", "As", "Sb", "Bi", "Se", "Te")
NONMETALS = set(NOBLE) | {"H", "B", "C", "N", "O", "F", "Si", "P", "S", "Cl", "As", "Se", "Br",
                          "Te", "I"}

KINDS = ("mp-bulk", "mp-substituted", "elemental", "prototype", "alloy", "vacancy", "surface",
         "molecule")

# How many materials of each random kind (the others are fixed lists); mp-substituted counts
# substitutions per bundled structure.
COUNTS = {"mp-substituted": 24, "prototype": 3000, "alloy": 400, "vacancy": 400, "surface": 300}


# --- extra prototype builders (each takes element symbols; scale fixed later) ---------------

def _rutile(a: str, x: str) -> Atoms:
    return crystal([a, x], basis=[(0, 0, 0), (0.305, 0.305, 0)], spacegroup=136,
                   cellpar=[4.6, 4.6, 2.96, 90, 90, 90])


def _nias(a: str, x: str) -> Atoms:
    return crystal([a, x], basis=[(0, 0, 0), (1 / 3, 2 / 3, 0.25)], spacegroup=194,
                   cellpar=[3.6, 3.6, 5.0, 90, 90, 120])


def _pyrite(a: str, x: str) -> Atoms:
    return crystal([a, x], basis=[(0, 0, 0), (0.385, 0.385, 0.385)], spacegroup=205,
                   cellpar=[5.4, 5.4, 5.4, 90, 90, 90])


def _alb2(a: str, b: str) -> Atoms:
    return crystal([a, b], basis=[(0, 0, 0), (1 / 3, 2 / 3, 0.5)], spacegroup=191,
                   cellpar=[3.0, 3.0, 3.3, 90, 90, 120])


def _reo3(b: str, x: str) -> Atoms:
    return crystal([b, x], basis=[(0, 0, 0), (0.5, 0, 0)], spacegroup=221,
                   cellpar=[3.8, 3.8, 3.8, 90, 90, 90])


def _l10(a: str, b: str) -> Atoms:
    return crystal([a, b], basis=[(0, 0, 0), (0.5, 0.5, 0.5)], spacegroup=123,
                   cellpar=[2.8, 2.8, 3.7, 90, 90, 90])


def _a15(a: str, b: str) -> Atoms:  # A3B, e.g. Nb3Sn
    return crystal([a, b], basis=[(0.25, 0, 0.5), (0, 0, 0)], spacegroup=223,
                   cellpar=[5.3, 5.3, 5.3, 90, 90, 90])


def _heusler(x: str, y: str, z: str) -> Atoms:  # X2YZ, e.g. Cu2MnAl (primitive, 4 atoms)
    conv = crystal([x, y, z], basis=[(0.25, 0.25, 0.25), (0, 0, 0), (0.5, 0.5, 0.5)],
                   spacegroup=225, cellpar=[6.0, 6.0, 6.0, 90, 90, 90], primitive_cell=True)
    return conv


def _half_heusler(x: str, y: str, z: str) -> Atoms:  # XYZ, e.g. NiMnSb (primitive, 3 atoms)
    return crystal([x, y, z], basis=[(0.25, 0.25, 0.25), (0, 0, 0), (0.5, 0.5, 0.5)],
                   spacegroup=216, cellpar=[5.9, 5.9, 5.9, 90, 90, 90], primitive_cell=True)


def _thcr2si2(a: str, b: str, x: str) -> Atoms:  # AB2X2, e.g. BaFe2As2 (primitive, 5 atoms)
    return crystal([a, b, x], basis=[(0, 0, 0), (0, 0.5, 0.25), (0, 0, 0.37)], spacegroup=139,
                   cellpar=[4.0, 4.0, 12.0, 90, 90, 90], primitive_cell=True)


def _chalcopyrite(a: str, b: str, x: str) -> Atoms:  # ABX2, e.g. CuFeS2 (primitive, 8 atoms)
    return crystal([a, b, x], basis=[(0, 0, 0), (0, 0, 0.5), (0.25, 0.25, 0.125)],
                   spacegroup=122, cellpar=[5.3, 5.3, 10.4, 90, 90, 90], primitive_cell=True)


def _corundum(a: str, x: str) -> Atoms:  # A2X3, e.g. Al2O3 (rhombohedral primitive, 10 atoms)
    return crystal([a, x], basis=[(0, 0, 0.3523), (0.3064, 0, 0.25)], spacegroup=167,
                   cellpar=[4.76, 4.76, 12.99, 90, 90, 120], primitive_cell=True)


EXTRA_BUILDERS: dict[str, Callable[..., Atoms]] = {
    "corundum": _corundum, "rutile": _rutile, "nias": _nias, "pyrite": _pyrite, "alb2": _alb2,
    "reo3": _reo3, "l10": _l10, "a15": _a15, "heusler": _heusler, "half-heusler": _half_heusler,
    "thcr2si2": _thcr2si2, "chalcopyrite": _chalcopyrite,
}

# Roles of each prototype's element slots: M metal/cation, X anion, Z p-block, A any element.
PROTOTYPE_ROLES: dict[str, str] = {
    "rocksalt": "MX", "cscl": "MA", "zincblende": "MX", "wurtzite": "MX", "fluorite": "MX",
    "antifluorite": "MX", "perovskite": "MMX", "spinel": "MMX", "cdi2": "MX", "mos2": "MX",
    "l12": "MM", "rutile": "MX", "nias": "MA", "pyrite": "MX", "alb2": "MA", "reo3": "MX",
    "l10": "MM", "a15": "MM", "heusler": "MMZ", "half-heusler": "MMZ", "thcr2si2": "MMZ",
    "chalcopyrite": "MMX",
}
ELEMENTAL = ("fcc", "bcc", "hcp", "diamond", "sc")


#: The smallest volume per atom a built crystal may have (A^3; diamond has 5.7, LiH 4.2).
#: Contact scaling alone packs elements with tiny radii to unphysical densities: fcc H at
#: 0.62 A spacing has ~3,000 neighbours within the teacher's 5 A cutoff and cost the teacher
#: ~700 s per material.
MIN_VOLUME_PER_ATOM = 4.0


def contact_radius(symbol: str) -> float:
    """The radius used for contact scaling: covalent, but van der Waals for noble gases (whose
    covalent radii, e.g. He 0.28 A, describe no bond they form)."""
    z = atomic_numbers[symbol]
    return float(vdw_radii[z] if symbol in NOBLE else covalent_radii[z])


def contact_scaled(atoms: Atoms) -> Atoms:
    """Isotropic scaling to contact (closest pair at the sum of :func:`contact_radius`, minimum
    image), then expanded if needed to :data:`MIN_VOLUME_PER_ATOM`."""
    atoms = atoms.copy()
    pos = atoms.get_positions()
    _, dist = get_distances(pos, pos, cell=atoms.cell, pbc=True)
    radii = np.array([contact_radius(s) for s in atoms.get_chemical_symbols()])
    ratio = dist / (radii[:, None] + radii[None, :])
    np.fill_diagonal(ratio, np.inf)
    if len(atoms) == 1 or not np.isfinite(ratio).any():  # compare with the periodic images
        ratio = np.array([atoms.cell.lengths().min() / (2 * radii[0])])
    atoms.set_cell(atoms.cell[:] / float(ratio.min()), scale_atoms=True)
    floor = MIN_VOLUME_PER_ATOM * len(atoms) / atoms.get_volume()
    if floor > 1.0:
        atoms.set_cell(atoms.cell[:] * floor ** (1 / 3), scale_atoms=True)
    return atoms


def builder(proto: str) -> Callable[..., Atoms]:
    return PROTOTYPE_BUILDERS.get(proto) or EXTRA_BUILDERS[proto]


class _Balancer:
    """Draws elements from a pool, favouring the ones that are in the fewest materials so far."""

    def __init__(self, rng: np.random.Generator):
        self.rng, self.counts = rng, Counter()

    def draw(self, pool: Sequence[str], exclude: Sequence[str] = ()) -> str:
        cand = [el for el in pool if el not in exclude]
        w = np.array([1.0 / (1.0 + self.counts[el]) ** 2 for el in cand])
        return cand[int(self.rng.choice(len(cand), p=w / w.sum()))]

    def take(self, elements) -> None:
        self.counts.update(set(elements))


def _pools(elements: Sequence[str]) -> dict[str, list[str]]:
    els = [e for e in elements if e in atomic_numbers]
    metals = [e for e in els if e not in NONMETALS]
    return {"M": metals, "X": [e for e in ANIONS if e in els],
            "Z": [e for e in P_BLOCK if e in els], "A": [e for e in els]}


def _spec(name: str, kind: str, atoms: Atoms, proto: str, scaled: bool) -> MaterialSpec:
    atoms = Atoms(atoms.numbers, positions=atoms.positions, cell=atoms.cell[:], pbc=atoms.pbc)
    return MaterialSpec(name, kind, atoms, proto, scaled)


def _elemental(elements: Sequence[str]) -> list[MaterialSpec]:
    out = []
    for el in elements:
        for lat in ELEMENTAL:
            if lat == "sc":
                atoms = Atoms(el, cell=np.eye(3) * 3.0, pbc=True)
            elif lat == "hcp":
                atoms = bulk(el, "hcp", a=3.0, c=3.0 * np.sqrt(8 / 3))
            else:
                atoms = bulk(el, lat, a=4.0)
            out.append(_spec(f"{lat}:{el}", "elemental", contact_scaled(atoms),
                             lat, True))
    return out + [MaterialSpec(s.name, "elemental", s.atoms, s.prototype) for s in dcdft_specs()
                  if all(sym in elements for sym in s.atoms.get_chemical_symbols())]


def _similar(el: str, elements: Sequence[str]) -> list[str]:
    from pymatgen.core import Element

    e = Element(el)
    if e.is_lanthanoid or e.is_actinoid:
        cls = [x for x in elements if Element(x).is_lanthanoid or Element(x).is_actinoid]
    elif e.is_transition_metal:
        cls = [x for x in elements if Element(x).is_transition_metal
               and not (Element(x).is_lanthanoid or Element(x).is_actinoid)]
    else:
        cls = [x for x in elements if Element(x).group == e.group]
    return cls or [el]


def _substituted(bundled: list[MaterialSpec], elements: Sequence[str], bal: _Balancer,
                 per: int) -> list[MaterialSpec]:
    out, seen = [], set()
    for spec in bundled:
        syms = sorted(set(spec.atoms.get_chemical_symbols()))
        for _ in range(per * 3):
            if sum(o.name.startswith(spec.name + ">") for o in out) >= per:
                break
            mapping: dict[str, str] = {}
            for s in syms:
                mapping[s] = bal.draw(_similar(s, elements), exclude=list(mapping.values()))
            key = (spec.name, tuple(mapping[s] for s in syms))
            if key in seen or all(mapping[s] == s for s in syms):
                continue
            seen.add(key)
            atoms = spec.atoms.copy()
            atoms.set_chemical_symbols([mapping[s] for s in atoms.get_chemical_symbols()])
            bal.take(mapping.values())
            tag = "-".join(f"{s}{mapping[s]}" for s in syms)
            out.append(_spec(f"{spec.name}>{tag}", "mp-substituted",
                             contact_scaled(atoms), spec.prototype, True))
    return out


def _prototypes(elements: Sequence[str], bal: _Balancer, n: int) -> list[MaterialSpec]:
    pools, protos = _pools(elements), sorted(PROTOTYPE_ROLES)
    out, seen = [], set()
    while len(out) < n:
        proto = protos[int(bal.rng.integers(len(protos)))]
        roles = PROTOTYPE_ROLES[proto]
        if bal.rng.random() < 0.15:  # any element anywhere: chemistry far from the usual
            roles = "A" * len(roles)
        chosen: list[str] = []
        for r in roles:
            chosen.append(bal.draw(pools[r], exclude=chosen))
        key = (proto, tuple(chosen))
        if key in seen:
            continue
        seen.add(key)
        bal.take(chosen)
        atoms = contact_scaled(builder(proto)(*chosen))
        out.append(_spec(f"{proto}:{'-'.join(chosen)}", "prototype", atoms, proto, True))
    return out


def _alloys(elements: Sequence[str], bal: _Balancer, n: int) -> list[MaterialSpec]:
    metals = _pools(elements)["M"]
    out = []
    for i in range(n):
        lat = ("fcc", "bcc", "hcp")[i % 3]
        k = 2 + int(bal.rng.random() < 0.4)
        chosen: list[str] = []
        for _ in range(k):
            chosen.append(bal.draw(metals, exclude=chosen))
        base = bulk("Cu", lat, a=3.6) if lat != "hcp" else bulk("Cu", "hcp", a=2.6, c=4.2)
        atoms = supercell_for(base, int(bal.rng.integers(8, 17)), 16)
        symbols = [chosen[j] for j in bal.rng.integers(k, size=len(atoms))]
        symbols[:k] = chosen  # every chosen element present
        atoms.set_chemical_symbols(symbols)
        bal.take(chosen)
        out.append(_spec(f"alloy{i}:{lat}:{'-'.join(chosen)}", "alloy",
                         contact_scaled(atoms), lat, True))
    return out


def _vacancies(parents: list[MaterialSpec], bal: _Balancer, n: int) -> list[MaterialSpec]:
    out = []
    for i in range(n):
        parent = parents[int(bal.rng.integers(len(parents)))]
        atoms = supercell_for(parent.atoms, 8, 24)
        if len(atoms) < 4:
            continue
        j = int(bal.rng.integers(len(atoms)))
        removed = atoms[j].symbol
        del atoms[j]
        out.append(_spec(f"vacancy{i}:{parent.name}:-{removed}{j}", "vacancy", atoms,
                         parent.prototype, parent.radius_scaled))
    return out


def _slab(el: str, lat: str, rng: np.random.Generator) -> tuple[Atoms, str]:
    layers = int(rng.integers(2, 5))
    a0 = contact_scaled(bulk(el, "fcc" if lat in ("111", "100") else lat, a=4.0)
                                 if lat != "hcp" else bulk(el, "hcp", a=3.0, c=4.9))
    if lat == "111":
        return fcc111(el, (2, 2, layers), a=a0.cell.lengths()[0] * np.sqrt(2), vacuum=6.0), "fcc111"
    if lat == "100":
        return fcc100(el, (2, 2, layers), a=a0.cell.lengths()[0] * np.sqrt(2), vacuum=6.0), "fcc100"
    if lat == "bcc":
        a = a0.cell.lengths()[0] * 2 / np.sqrt(3)
        return bcc110(el, (2, 2, layers), a=a, vacuum=6.0), "bcc110"
    a = a0.cell.lengths()[0]
    return hcp0001(el, (2, 2, layers), a=a, c=a * np.sqrt(8 / 3), vacuum=6.0), "hcp0001"


def _surfaces(elements: Sequence[str], bal: _Balancer, n: int) -> list[MaterialSpec]:
    pools = _pools(elements)
    out = []
    for i in range(n):
        if i % 3 == 2:  # a binary compound's (100) slab
            proto = ("rocksalt", "zincblende")[i % 2]
            m = bal.draw(pools["M"])
            x = bal.draw(pools["X"], exclude=[m])
            cell = contact_scaled(builder(proto)(m, x))
            # the conventional cubic cell: (100) of the primitive fcc cell is a (110)-type cut
            atoms = surface(cell, (1, 0, 0), int(bal.rng.integers(2, 4)), vacuum=6.0)
            atoms = supercell_for(atoms, 4, 24)
            chosen, name = [m, x], f"{proto}(100)"
        else:
            el = bal.draw(pools["M"])
            atoms, name = _slab(el, ("111", "100", "bcc", "hcp")[int(bal.rng.integers(4))],
                                bal.rng)
            chosen = [el]
        atoms.pbc = True
        bal.take(chosen)
        out.append(_spec(f"surface{i}:{name}:{'-'.join(chosen)}", "surface", atoms, name, True))
    return out


def molecule_in_box(atoms: Atoms, gap: float = 9.0) -> Atoms:
    """``atoms`` centred in an orthorhombic periodic box with ``gap`` A between images."""
    out = Atoms(atoms.numbers, positions=atoms.positions, pbc=True)
    extent = out.positions.max(axis=0) - out.positions.min(axis=0)
    out.set_cell(np.diag(np.maximum(extent + gap, 10.0)))
    out.center()
    return out


def _molecules(elements: Sequence[str]) -> list[MaterialSpec]:
    out = []
    for name in g2.names:
        mol = g2[name]
        if all(s in elements for s in mol.get_chemical_symbols()):
            out.append(_spec(f"g2:{name}", "molecule", molecule_in_box(mol), "g2", False))
    for el in elements:  # dimers at 1.1 x the contact distance
        d = 2.2 * contact_radius(el)
        out.append(_spec(f"dimer:{el}2", "molecule",
                         molecule_in_box(Atoms([el, el], positions=[(0, 0, 0), (0, 0, d)])),
                         "dimer", True))
    return out


def catalog(seed: int, elements: Sequence[str], counts: dict[str, int] | None = None
            ) -> list[MaterialSpec]:
    """Every starting material, in one seeded random order (a prefix is a balanced subset).

    ``elements``: the teacher's supported elements; nothing outside them is built.
    ``counts``: how many materials of each random kind (default :data:`COUNTS`; tests ask for
    fewer).
    """
    counts = {**COUNTS, **(counts or {})}
    elements = sorted(elements, key=lambda s: atomic_numbers[s])
    bal = _Balancer(np.random.default_rng([seed, 2]))
    bundled, _ = pymatgen_bundled_specs(max_atoms=32)
    bundled = [MaterialSpec(s.name, "mp-bulk", s.atoms, s.prototype) for s in bundled
               if all(sym in elements for sym in s.atoms.get_chemical_symbols())]
    elemental = _elemental(elements)
    for s in bundled + elemental:
        bal.take(s.atoms.get_chemical_symbols())
    specs = bundled + _substituted(bundled, elements, bal, counts["mp-substituted"]) + elemental
    protos = _prototypes(elements, bal, counts["prototype"])
    specs += protos + _alloys(elements, bal, counts["alloy"])
    specs += _vacancies(protos + elemental, bal, counts["vacancy"])
    specs += _surfaces(elements, bal, counts["surface"]) + _molecules(elements)
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        dup = [k for k, v in Counter(names).items() if v > 1][:5]
        raise ValueError(f"duplicate material names in the catalog: {dup}")
    order = np.random.default_rng([seed, 3]).permutation(len(specs))
    return [specs[i] for i in order]
