"""The distillation set's extension (facet.teacher.compounds): charge-balanced compounds in
the prototypes real ones take. ASE and pymatgen only (no teacher)."""

import itertools
from collections import Counter

from test_distill2 import ELEMENTS, SMALL

from facet.teacher.catalog import catalog


def _charge_balanced(spec) -> bool:
    """Whether some choice of common cation charges balances the anion's (the anion is the last
    element of the name ``common:<prototype>:<cations>-<anion>``) in the built cell."""
    from facet.teacher.compounds import ANION_CHARGE, cation_charges

    *cations, x = spec.name.split(":")[2].split("-")
    counts = Counter(spec.atoms.get_chemical_symbols())
    charges = cation_charges(cations)
    return any(sum(counts[c] * q for c, q in zip(cations, qs, strict=True))
               == counts[x] * ANION_CHARGE[x]
               for qs in itertools.product(*(charges[c] for c in cations)))


def test_common_compounds_are_charge_balanced_and_cover_real_chemistry():
    """The extension (kind ``common``): deterministic, inside the elements, every compound
    charge-balanced with common oxidation states, the prototypes real compounds take, and the
    compounds the catalog missed (rock-salt MgO, wurtzite ZnO and GaN, zinc-blende GaAs, corundum
    Al2O3, perovskite SrTiO3-type) among them."""
    from facet.teacher.compounds import COMMON_BINARY, COMMON_CAPS, common_compounds

    specs = common_compounds(0, ELEMENTS)
    again = common_compounds(0, ELEMENTS)
    assert [s.name for s in specs] == [s.name for s in again]
    assert len({s.name for s in specs}) == len(specs)
    assert {s.source for s in specs} == {"common"}
    assert {el for s in specs for el in s.atoms.get_chemical_symbols()} <= set(ELEMENTS)
    protos = Counter(s.prototype for s in specs)
    assert set(protos) == {p for ps in COMMON_BINARY.values() for p in ps} | {"perovskite",
                                                                            "spinel"}
    assert all(protos[p] <= cap for p, cap in COMMON_CAPS.items())
    for s in specs:
        assert _charge_balanced(s), s.name
    names = {s.name for s in specs}
    for want in ("common:rocksalt:Mg-O", "common:wurtzite:Zn-O", "common:wurtzite:Ga-N",
                 "common:zincblende:Ga-As", "common:corundum:Al-O", "common:fluorite:Zr-O",
                 "common:rutile:Ti-O", "common:rocksalt:Na-Cl", "common:antifluorite:Li-O"):
        assert want in names, want
    assert not names & {s.name for s in catalog(0, ELEMENTS, counts=SMALL)}
    rocksalt_mgo = next(s for s in specs if s.name == "common:rocksalt:Mg-O").atoms
    assert rocksalt_mgo.get_chemical_formula() == "MgO"
    spinel = [s for s in specs if s.prototype == "spinel"]
    assert spinel and all(len(s.atoms) == 14 for s in spinel)
