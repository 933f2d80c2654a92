"""The extension of the broad distillation set: charge-balanced compounds in the prototypes
real ones take (kind ``common`` of ``data/distill2``; ASE + pymatgen only).

The catalog (:mod:`facet.teacher.catalog`) draws the elements of its prototypes at random by
rarity, so common chemistry is rare in it: its labelled training materials held no Mg-O, Zn-O,
Ga-As, Ca-O or Fe-O binary. :func:`common_compounds` lists every compound that common oxidation
states (pymatgen) balance in the binary prototypes of :data:`COMMON_BINARY`, and a seeded draw
of perovskites and spinels; :func:`facet.teacher.distill2.plan` appends them after the
catalog's materials.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase.data import atomic_numbers

from facet.teacher.catalog import NOBLE, _spec, builder, contact_scaled
from facet.teacher.structures import MaterialSpec

#: Anions of :func:`common_compounds` and the magnitude of their charge.
ANION_CHARGE = {"O": 2, "S": 2, "Se": 2, "Te": 2, "F": 1, "Cl": 1, "Br": 1, "I": 1, "N": 3,
                "P": 3, "As": 3, "H": 1}
#: Binary prototypes by formula ``(cations, anions)``: AX rock salt (MgO, NaCl), zinc blende
#: (GaAs, ZnS), wurtzite (ZnO, GaN) and CsCl (CsCl, TlBr); AX2 fluorite (CaF2, ZrO2), rutile
#: (TiO2, SnO2) and CdI2 (CdI2, TiS2); A2X anti-fluorite (Li2O, Na2S); AX3 ReO3 (ScF3, WO3);
#: A2X3 corundum (Al2O3, Cr2O3).
COMMON_BINARY = {(1, 1): ("rocksalt", "zincblende", "wurtzite", "cscl"),
                 (1, 2): ("fluorite", "rutile", "cdi2"), (2, 1): ("antifluorite",),
                 (1, 3): ("reo3",), (2, 3): ("corundum",)}
#: How many of each prototype to keep (a seeded draw) where the charge-balanced choices are more:
#: ternaries are many (A x B x X); CdI2 layers are the least common of the AX2 types.
COMMON_CAPS = {"perovskite": 200, "spinel": 150, "cdi2": 80}
#: Perovskite A-site cations (large: alkali, alkaline earth, rare earth, Pb, Bi).
PEROVSKITE_A = ("Na", "K", "Rb", "Cs", "Ca", "Sr", "Ba", "Pb", "La", "Ce", "Pr", "Nd", "Sm",
                "Eu", "Gd", "Y", "Bi")


def cation_charges(elements: Sequence[str]) -> dict[str, list[int]]:
    """Each element that can be a cation with its positive common oxidation states (pymatgen's
    ``Element.common_oxidation_states``); noble gases, carbon and the anions that are not also
    common cations (H, N, O, F, P, S, Cl, Se, Br, I) are left out."""
    from pymatgen.core import Element

    never = set(NOBLE) | {"C", "H", "N", "O", "F", "P", "S", "Cl", "Se", "Br", "I"}
    out = {}
    for el in elements:
        if el in never:
            continue
        qs = sorted(q for q in Element(el).common_oxidation_states if q > 0)
        if qs:
            out[el] = qs
    return out


def common_compounds(seed: int, elements: Sequence[str]) -> list[MaterialSpec]:
    """Charge-balanced compounds in the prototypes that real ones take (kind ``common``), in one
    seeded order: every cation charge ``q`` of :func:`cation_charges` with every anion of
    :data:`ANION_CHARGE` whose charge balances it in a formula of :data:`COMMON_BINARY` (AX, AX2,
    A2X, AX3, A2X3), and a seeded draw of :data:`COMMON_CAPS` perovskites ABX3 (A from
    :data:`PEROVSKITE_A`; ``q_A + q_B = 3 q_X``, X = O or F) and spinels AB2X4
    (``q_A + 2 q_B = 4 q_X``, X = O, S, Se or F).

    The catalog draws elements for its prototypes at random by rarity, so common chemistry is
    rare in it: the labelled catalog holds no Mg-O or Zn-O binary for training, and the
    shipped model erred by 1.2 eV/atom on held-out rock-salt MgO. These materials put the
    compounds users compute in the training data. Built at contact (:func:`contact_scaled`);
    the labelling's volume search finds the teacher's equilibrium."""
    elements = sorted(elements, key=lambda s: atomic_numbers[s])
    cations = cation_charges(elements)
    anions = {x: q for x, q in ANION_CHARGE.items() if x in elements}
    rng = np.random.default_rng([seed, 7])
    found: dict[str, list[tuple[str, tuple[str, ...]]]] = {}

    def add(proto: str, chosen: tuple[str, ...]) -> None:
        if len(set(chosen)) == len(chosen):
            found.setdefault(proto, []).append((f"common:{proto}:{'-'.join(chosen)}", chosen))

    for (n_a, n_x), protos in COMMON_BINARY.items():
        for a, qs in cations.items():
            for x, qx in anions.items():
                if any(n_a * q == n_x * qx for q in qs):
                    for proto in protos:
                        add(proto, (a, x))
    for a in PEROVSKITE_A:
        for b, qbs in cations.items():
            for x in ("O", "F"):
                if a in cations and x in anions and any(
                        qa + qb == 3 * anions[x] for qa in cations[a] for qb in qbs):
                    add("perovskite", (a, b, x))
    for a, qas in cations.items():
        for b, qbs in cations.items():
            for x in ("O", "S", "Se", "F"):
                if x in anions and any(qa + 2 * qb == 4 * anions[x] for qa in qas for qb in qbs):
                    add("spinel", (a, b, x))
    specs = []
    for proto in sorted(found):
        items = sorted(set(found[proto]))
        cap = COMMON_CAPS.get(proto)
        if cap is not None and len(items) > cap:
            items = [items[i] for i in sorted(rng.choice(len(items), cap, replace=False))]
        for name, chosen in items:
            atoms = contact_scaled(builder(proto)(*chosen))
            specs.append(_spec(name, "common", atoms, proto, True))
    order = rng.permutation(len(specs))
    return [specs[i] for i in order]
