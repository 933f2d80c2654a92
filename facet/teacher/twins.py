"""One structure under two names: keep such *twins* on the same side of the held-out split.

The distillation catalog reaches some structures by more than one road: the ``common``
extension re-derives prototype compounds of the first catalog (``rocksalt:Mg-O`` and
``common:rocksalt:Mg-O``), a substitution of a prototype can land on another prototype
(``pymatgen:Sn.json>SnSi`` is diamond Si), a Materials Project structure can be a prototype at
another starting volume (``pymatgen:SrTiO3.json`` and ``common:perovskite:Sr-Ti-O``; labelling
searches every bulk material's volume to the teacher's equilibrium anyway), two vacancies of one
host can be equivalent by symmetry, two slabs of one facet can coincide. Split by *name*, one
twin can be held out while the other is trained on, and the held-out error then measures a
material the model has seen.

:func:`structure_twins` finds the twins among the materials' starting structures: materials of
one reduced formula and one space group (spglib at a loose ``symprec`` of 0.1 A, so that a
slightly distorted copy of a symmetric structure counts as it) are candidates, and pymatgen's
:class:`~pymatgen.analysis.structure_matcher.StructureMatcher` (its default tolerances, volume
scaled) groups them. :func:`join_twins` moves a held-out material whose twin is a training
material into train, and puts a group held out on both sides into test; held-out materials
only ever leave the held-out side or validation, so every checkpoint trained before the move
stays trained on a subset of the new training split, and its errors on the new held-out split
are still on unseen materials.
"""

from __future__ import annotations

from collections.abc import Sequence

from ase import Atoms

__all__ = ["join_twins", "structure_key", "structure_twins"]


def structure_key(atoms: Atoms) -> tuple:
    """(reduced formula, space-group number): equal for equal structures, whatever their cell
    choice, origin, atom order or volume."""
    import spglib

    cell = (atoms.cell[:], atoms.get_scaled_positions(), atoms.numbers)
    sg = spglib.get_symmetry_dataset(cell, symprec=0.1)
    return (atoms.get_chemical_formula(empirical=True), int(sg.number) if sg is not None else 0)


def structure_twins(atoms_list: Sequence[Atoms], ids: Sequence[str]) -> list[list[str]]:
    """Groups (two or more ids, in input order) of materials whose structures are the same up to
    volume: equal :func:`structure_key` and grouped by pymatgen's ``StructureMatcher``."""
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
        structures = []
        for i in members:
            s = AseAtomsAdaptor.get_structure(atoms_list[i])
            s.properties["twin_index"] = i  # to map the matcher's groups back to ids
            structures.append(s)
        for found in matcher.group_structures(structures):
            if len(found) > 1:
                groups.append([ids[i] for i in sorted(s.properties["twin_index"] for s in found)])
    return groups


def join_twins(splits: dict[str, list[str]], twins: Sequence[Sequence[str]]
               ) -> tuple[dict[str, list[str]], list[str]]:
    """(new splits, the ids moved). A group with a training member goes to train whole; a group
    held out on both sides (val and test) goes to test whole."""
    side = {m: name for name, members in splits.items() for m in members}
    goes: dict[str, str] = {}
    for group in twins:
        sides = {side.get(m) for m in group}
        target = "train" if "train" in sides else "test" if "test" in sides else None
        for m in group:
            if target and side.get(m) not in (None, target):
                goes[m] = target
    out = {name: sorted(m for m in members if m not in goes) for name, members in splits.items()}
    for m, target in goes.items():
        out.setdefault(target, []).append(m)
    return {name: sorted(members) for name, members in out.items()}, sorted(goes)
