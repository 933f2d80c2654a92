"""One structure under two names: keep such *twins* on the same side of the held-out split.

The distillation catalog reaches some structures by more than one road: the ``common``
extension re-derives prototype compounds of the first catalog (``rocksalt:Mg-O`` and
``common:rocksalt:Mg-O``), a substitution of a prototype can land on another prototype
(``pymatgen:Sn.json>SnSi`` is diamond Si), two vacancies of one host can be equivalent by
symmetry, two slabs of one facet can coincide. Split by *name*, one twin can be held out while
the other is trained on, and the held-out error then measures a material the model has seen.

:func:`structure_twins` finds the twins among the materials' starting structures: a cheap key
(reduced formula, space group from spglib at ``symprec`` 1e-3, volume per atom to 0.01 A^3)
proposes candidates (re-derivations of one structure land on one key; two volumes either
side of a rounding edge would not be compared), and pymatgen's
:class:`~pymatgen.analysis.structure_matcher.StructureMatcher` (its default tolerances)
confirms them. :func:`join_twins` moves a held-out
material whose twin is a training material into train; held-out materials only ever leave the
held-out side, so every checkpoint trained before the move stays trained on a subset of the new
training split, and its errors on the new held-out split are still on unseen materials.
"""

from __future__ import annotations

from collections.abc import Sequence

from ase import Atoms

__all__ = ["join_twins", "structure_key", "structure_twins"]


def structure_key(atoms: Atoms) -> tuple:
    """(reduced formula, space-group number, volume per atom in A^3 to 0.01): equal for equal
    structures, whatever their cell choice, origin or atom order."""
    import spglib

    cell = (atoms.cell[:], atoms.get_scaled_positions(), atoms.numbers)
    sg = spglib.get_symmetry_dataset(cell, symprec=1e-3)
    number = int(sg.number) if sg is not None else 0
    return (atoms.get_chemical_formula(empirical=True), number,
            round(atoms.get_volume() / len(atoms), 2))


def structure_twins(atoms_list: Sequence[Atoms], ids: Sequence[str]) -> list[list[str]]:
    """Groups (two or more ids, in input order) of materials whose structures are the same:
    equal :func:`structure_key` and matched by pymatgen's ``StructureMatcher``."""
    from pymatgen.analysis.structure_matcher import StructureMatcher
    from pymatgen.io.ase import AseAtomsAdaptor

    if len(atoms_list) != len(ids):
        raise ValueError(f"{len(atoms_list)} structures for {len(ids)} ids")
    by_key: dict[tuple, list[int]] = {}
    for i, atoms in enumerate(atoms_list):
        by_key.setdefault(structure_key(atoms), []).append(i)
    matcher = StructureMatcher()
    groups = []
    for members in by_key.values():
        if len(members) < 2:
            continue
        structures = [AseAtomsAdaptor.get_structure(atoms_list[i]) for i in members]
        for found in matcher.group_structures(structures):
            if len(found) > 1:
                ids_in = {id(s) for s in found}
                groups.append([ids[i] for i, s in zip(members, structures, strict=True)
                               if id(s) in ids_in])
    return groups


def join_twins(splits: dict[str, list[str]], twins: Sequence[Sequence[str]]
               ) -> tuple[dict[str, list[str]], list[str]]:
    """(new splits, the ids moved): every held-out member of a twin group that has a training
    member joins train. Groups held out entirely stay where they are."""
    side = {m: name for name, members in splits.items() for m in members}
    moved = []
    for group in twins:
        if any(side.get(m) == "train" for m in group):
            moved += [m for m in group if side.get(m) not in (None, "train")]
    gone = set(moved)
    out = {name: sorted(m for m in members if m not in gone) for name, members in splits.items()}
    out["train"] = sorted(out.get("train", []) + moved)
    return out, sorted(moved)
