"""The broad distillation set's generator (facet.teacher): materials, split, compact frames.

Only ASE and pymatgen are needed (no teacher): the labelling itself runs in the teacher
environment and is checked by the data tests on the committed shards.
"""

import json
import os
from collections import Counter

import numpy as np
import pytest
from ase.data import atomic_numbers
from ase.geometry import get_distances

from facet.teacher.catalog import KINDS, catalog, molecule_in_box
from facet.teacher.distill2 import HELD_OUT, split_by_material

ELEMENTS = ["H", "Li", "B", "C", "N", "O", "F", "Na", "Mg", "Al", "Si", "S", "Cl", "Ti", "Fe",
            "Ni", "Cu", "Zn", "Ga", "As", "Sr", "Zr", "Ag", "Ba", "La", "W", "Pt", "Au", "Pb",
            "Ar", "Ce", "U"]
SMALL = {"mp-substituted": 2, "prototype": 120, "alloy": 12, "vacancy": 12, "surface": 12}


@pytest.fixture(scope="module")
def specs():
    return catalog(0, ELEMENTS, counts=SMALL)


def test_catalog_is_deterministic_and_within_the_elements(specs):
    again = catalog(0, ELEMENTS, counts=SMALL)
    assert [s.name for s in specs] == [s.name for s in again]
    for a, b in zip(specs, again, strict=True):
        np.testing.assert_array_equal(a.atoms.positions, b.atoms.positions)
    other = catalog(1, ELEMENTS, counts=SMALL)
    assert [s.name for s in other] != [s.name for s in specs]
    used = {el for s in specs for el in s.atoms.get_chemical_symbols()}
    assert used <= set(ELEMENTS)
    assert len({s.name for s in specs}) == len(specs)


def test_every_kind_is_present_and_every_element_is_covered(specs):
    kinds = Counter(s.source for s in specs)
    assert set(kinds) == set(KINDS), kinds
    assert kinds["prototype"] == SMALL["prototype"] and kinds["surface"] == SMALL["surface"]
    cover = Counter(el for s in specs for el in set(s.atoms.get_chemical_symbols()))
    assert set(cover) == set(ELEMENTS)
    # The balancer draws rare elements first: no element is far below the mean coverage.
    assert min(cover.values()) >= 0.3 * np.mean(list(cover.values())), cover


def test_built_crystals_sit_at_contact_or_at_the_density_floor(specs):
    from facet.teacher.catalog import MIN_VOLUME_PER_ATOM, contact_radius

    n_floor = 0
    for s in specs:
        if s.source not in ("prototype", "alloy", "elemental") or not s.radius_scaled:
            continue
        a = s.atoms
        _, d = get_distances(a.positions, a.positions, cell=a.cell, pbc=True)
        r = np.array([contact_radius(x) for x in a.get_chemical_symbols()])
        ratio = d / (r[:, None] + r[None, :])
        np.fill_diagonal(ratio, np.inf)
        v = a.get_volume() / len(a)
        assert v >= MIN_VOLUME_PER_ATOM * (1 - 1e-9), s.name
        if len(a) > 1:
            if v > MIN_VOLUME_PER_ATOM * (1 + 1e-9):  # contact scaling decided
                assert ratio.min() == pytest.approx(1.0, abs=1e-9), s.name
            else:  # expanded to the floor: farther than contact
                assert ratio.min() > 1.0, s.name
                n_floor += 1
    assert n_floor > 0  # H-rich crystals hit the floor in this catalog


def test_contact_radii_of_noble_gases_and_the_density_floor():
    from ase.build import bulk

    from facet.teacher.catalog import contact_scaled

    he = contact_scaled(bulk("He", "fcc", a=4.0))
    assert he.get_distance(0, 0, mic=False) == 0
    nn = min(np.linalg.norm(he.cell[:], axis=1))
    assert nn == pytest.approx(2 * 1.40, abs=1e-9)  # van der Waals contact (ASE: He 1.40 A)
    h = contact_scaled(bulk("H", "fcc", a=4.0))  # covalent contact would give 4.0 x 0.31^3
    assert h.get_volume() == pytest.approx(4.0, rel=1e-12)


def test_molecules_and_slabs_leave_more_vacuum_than_the_teacher_cutoff(specs):
    for s in specs:
        if s.source not in ("molecule", "surface"):
            continue
        a = s.atoms
        assert a.pbc.all()
        # the closest distance between an atom and any periodic image of the others (or of
        # itself) along the vacuum direction(s)
        pos = a.positions
        axes = range(3) if s.source == "molecule" else [2]
        for ax in axes:
            shifted = pos + a.cell[ax]
            gap = np.linalg.norm(pos[:, None] - shifted[None], axis=-1).min()
            assert gap > 8.0, (s.name, ax, gap)


def test_vacancy_removes_one_atom_of_a_named_parent(specs):
    by_name = {s.name: s for s in specs}
    vac = [s for s in specs if s.source == "vacancy"]
    assert vac
    for s in vac:
        parent_name = s.name.split(":", 1)[1].rsplit(":-", 1)[0]
        parent = by_name[parent_name]
        n_parent = len(parent.atoms)
        assert (len(s.atoms) + 1) % n_parent == 0, s.name  # a whole supercell less one atom


def test_molecule_in_box_centres_and_keeps_geometry():
    from ase.build import molecule

    water = molecule("H2O")
    boxed = molecule_in_box(water)
    d0 = water.get_all_distances()
    np.testing.assert_allclose(boxed.get_all_distances(mic=True), d0, atol=1e-12)
    assert (np.diag(boxed.cell[:]) >= 10.0).all()
    centre = boxed.positions.mean(axis=0)
    np.testing.assert_allclose(centre, np.diag(boxed.cell[:]) / 2, atol=1.0)


def test_split_is_by_material_stratified_and_keeps_training_coverage(specs):
    ids = [f"m{i}" for i in range(len(specs))]
    metas = [{"mp_id": i, "kind": s.source} for i, s in zip(ids, specs, strict=True)]
    elements_of = {i: set(s.atoms.get_chemical_symbols()) for i, s in zip(ids, specs, strict=True)}
    split = split_by_material(metas, elements_of, seed=0, min_train=8)
    assert sorted(split["train"] + split["val"] + split["test"]) == sorted(ids)
    assert not (set(split["train"]) & set(split["test"]))
    kind_of = {m["mp_id"]: m["kind"] for m in metas}
    # every kind is held out in the test split
    assert {kind_of[i] for i in split["test"]} == set(KINDS)
    n_kind = Counter(kind_of.values())
    for kind, n in n_kind.items():
        n_test = sum(kind_of[i] == kind for i in split["test"])
        assert n_test <= max(1, round(HELD_OUT["test"] * n))
    # every element keeps training materials: min(8, its count - 1), at least 1
    total = Counter(el for i in ids for el in elements_of[i])
    train = Counter(el for i in split["train"] for el in elements_of[i])
    for el, n in total.items():
        assert train[el] >= max(1, min(8, n - 1)), (el, train[el], n)
    assert split == split_by_material(metas, elements_of, seed=0, min_train=8)
    # the floor binds: above every count, each element leaves training in one material at most
    tight = split_by_material(metas, elements_of, seed=0, min_train=10_000)
    out = Counter(el for i in tight["test"] + tight["val"] for el in elements_of[i])
    assert out and max(out.values()) == 1


def test_compact_frame_round_trips_through_pymatgen_and_the_reader():
    from ase.build import bulk
    from pymatgen.core import Structure

    from facet.data.mptrj import structure_from_dict
    from facet.teacher.common import EV_PER_A3_TO_KBAR, MP2020, compact_frame

    atoms = bulk("NaCl", "rocksalt", a=5.64, cubic=True)
    atoms.rattle(0.05, seed=1)
    atoms.set_cell(atoms.cell[:] @ np.array([[1, 0.02, 0], [0.02, 0.98, 0], [0, 0, 1.01]]),
                   scale_atoms=True)
    forces = np.random.default_rng(0).normal(size=(len(atoms), 3))
    stress = np.diag([0.01, -0.02, 0.003])  # eV/A^3, ASE sign (tensile positive)
    fr, status = compact_frame(atoms, -27.5, forces, stress, "x-1", MP2020())
    assert status.startswith("GGA")
    positions, numbers, cell, pbc = structure_from_dict(fr["structure"])
    np.testing.assert_array_equal(numbers, atoms.numbers)
    np.testing.assert_allclose(positions, atoms.positions, atol=1e-6)
    np.testing.assert_allclose(cell, atoms.cell[:], atol=0)
    st = Structure.from_dict(fr["structure"])
    np.testing.assert_allclose(st.cart_coords, atoms.positions, atol=1e-6)
    assert [sp.symbol for sp in st.species] == atoms.get_chemical_symbols()
    np.testing.assert_allclose(fr["force"], forces, atol=0.5e-4)
    # VASP sign, kBar: compressive positive
    np.testing.assert_allclose(fr["stress"], -stress * EV_PER_A3_TO_KBAR, atol=0.5e-3)
    assert fr["stress"][1][1] > 0 > fr["stress"][0][0]
    assert fr["uncorrected_total_energy"] == -27.5
    assert fr["corrected_total_energy"] is not None  # a chloride: MP2020 applies


def test_elements_known():
    assert all(el in atomic_numbers for el in ELEMENTS)


def test_split_files_follow_splits_json_and_count_what_is_pending(tmp_path):
    import gzip
    import json

    from facet.teacher.distill2 import (
        shard_path,
        summarize,
        summary_markdown,
        write_shard,
        write_split_files,
    )

    def frame(mid, k):
        return {"structure": {"lattice": {"matrix": np.eye(3).tolist()},
                              "sites": [{"species": [{"element": "H", "occu": 1}],
                                         "abc": [0, 0, 0]}]},
                "uncorrected_total_energy": -1.0 * k, "force": [[0, 0, 0]],
                "stress": np.zeros((3, 3)).tolist(), "mp_id": mid}

    data = tmp_path / "set"
    (data / "shards").mkdir(parents=True)
    splits = {"train": ["a", "b", "d"], "val": ["c"], "test": ["e"]}
    (data / "splits.json").write_text(json.dumps(splits))
    results = [{"meta": {"mp_id": m, "name": m, "kind": kind, "n_frames": 2},
                "frames": {f"{m}-0-{k}": frame(m, k) for k in range(2)}}
               for m, kind in (("a", "alloy"), ("b", "molecule"), ("c", "alloy"))]
    write_shard(shard_path(str(data), 0), results[:2])
    write_shard(shard_path(str(data), 1), results[2:])
    out = write_split_files(str(data), str(tmp_path / "out"))
    assert out["train"]["materials"] == 2 and out["train"]["frames"] == 4
    assert out["train"]["pending"] == 1 and out["test"]["pending"] == 1
    with gzip.open(out["val"]["path"], "rt") as f:
        assert list(json.load(f)) == ["c"]
    summary = summarize(str(data))
    assert summary["kinds"]["alloy"] == {"materials": 2, "frames": 4, "train_materials": 1,
                                         "train_frames": 2, "val_materials": 1, "val_frames": 2}
    assert summary["splits"]["train"] == {"materials": 2, "frames": 4}
    assert summary["train_materials_per_element"] == {"H": 2}
    assert "| **all** | 3 | 6 | 0 | 0 | 1 |" in summary_markdown(summary, 53)
    # a prefix of the shards
    assert write_split_files(str(data), str(tmp_path / "o2"), max_shards=1)["val"]["frames"] == 0
    # a labelled material that the split does not name is an error, not a silent drop
    (data / "splits.json").write_text(json.dumps({"train": ["a"], "val": ["c"], "test": []}))
    with pytest.raises(ValueError, match="material b is not in"):
        write_split_files(str(data), str(tmp_path / "o3"))


def test_generate_frames_with_a_stand_in_teacher():
    """The sampling profile end to end, ASE's EMT standing in for SevenNet-0: a bulk material
    gets 12 frames (volume search, strains, rattles, FIRE, MD), an isolated atom one."""
    from ase import Atoms
    from ase.build import bulk
    from ase.calculators.emt import EMT

    from facet.teacher.common import MP2020
    from facet.teacher.distill2 import generate
    from facet.teacher.structures import MaterialSpec

    calc, mp = EMT(), MP2020()
    spec = MaterialSpec("fcc:Cu", "elemental", bulk("Cu", "fcc", a=3.7), "fcc", True)
    out = generate(spec, "m-1", 0, calc, mp)
    frames, meta = out["frames"], out["meta"]
    assert meta["n_frames"] == len(frames) == 12 and not meta["dropped"]
    kinds = Counter(k.split("-")[2] for k in frames)
    assert kinds == {"0": 7, "1": 3, "2": 2}
    assert meta["n_atoms"] >= 4 and 300 <= meta["md_temperature_K"] <= 2000
    # the volume search moves toward EMT's zero-pressure volume (a0 = 3.59 A for Cu)
    assert meta["equilibrium_scale"] < 1.0
    again = generate(spec, "m-1", 0, calc, mp)["frames"]
    assert again == frames  # deterministic from (seed, name)
    atom = MaterialSpec("g2:H", "molecule", Atoms("H", cell=[10, 10, 10], pbc=True), "g2")
    one = generate(atom, "m-2", 0, calc, mp)
    assert list(one["frames"]) == ["m-2-0-0"] and one["meta"]["n_frames"] == 1


def test_run_labels_shards_in_order_and_resumes(tmp_path, monkeypatch):
    """The labelling loop with EMT standing in for the teacher on a 5-material catalog: shards
    of 2 in order, and a second run leaves complete shards alone."""
    from ase.calculators.emt import EMT

    import facet.teacher.catalog as cat
    import facet.teacher.common as common
    import facet.teacher.distill2 as d

    class StandIn(EMT):
        type_map = [1, 6, 7, 8, 13, 28, 29, 46, 47, 78, 79]  # EMT's elements

    small = {"mp-substituted": 0, "prototype": 2, "alloy": 1, "vacancy": 1, "surface": 1}
    import facet.teacher.compounds as compounds

    full, full_common = cat.catalog, compounds.common_compounds
    monkeypatch.setattr(common, "load_teacher", StandIn)
    monkeypatch.setattr(cat, "catalog", lambda seed, el, counts=None: full(seed, el,
                                                                           counts=small)[:5])
    monkeypatch.setattr(compounds, "common_compounds",
                        lambda seed, el: full_common(seed, el)[:3])
    monkeypatch.setattr(d, "SHARD_SIZE", 2)
    out = tmp_path / "set"
    assert d.run(str(out), 0, 1, None, None, None) == 0
    paths = d.shard_paths(str(out))
    assert [p.rsplit("/", 1)[1] for p in paths] == [
        f"shard-{k:04d}.json.gz" for k in range(5)]
    ids = [m["mp_id"] for p in paths for m in d.read_shard_meta(p)]
    # the catalog's 5 materials, then the extension's 3 from the next shard boundary (6) on
    assert ids == d.material_ids(5) + d.material_ids(3, start=6)
    kinds = [m["kind"] for p in paths for m in d.read_shard_meta(p)]
    assert kinds[5:] == ["common"] * 3 and "common" not in kinds[:5]
    mtime = [os.path.getmtime(p) for p in paths]
    assert d.run(str(out), 0, 1, None, None, None) == 0
    assert [os.path.getmtime(p) for p in paths] == mtime
    e0 = json.loads((out / "teacher_e0.json").read_text())
    assert set(e0) == {"H", "C", "N", "O", "Al", "Ni", "Cu", "Pd", "Ag", "Pt", "Au"}


def test_collapsed_pairs_are_found_by_covalent_radii():
    """Frames whose atoms the teacher's MD has pushed together (F atoms 0.31 A apart in the
    first labelling, facet-distill2-004526) carry meaningless labels: a pair closer than
    max(0.5 A, 0.5 (r_i + r_j)) counts as collapsed, through periodic images too."""
    from ase import Atoms
    from ase.build import bulk

    from facet.teacher.common import collapsed_pair

    assert collapsed_pair(bulk("Si", "diamond", a=5.43)) is None
    assert collapsed_pair(Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]])) is None  # H2
    f2 = Atoms("F2", positions=[[0, 0, 0], [0, 0, 0.6]], cell=[8, 8, 8], pbc=True)
    assert collapsed_pair(f2) is None  # r_F = 0.57 A: the limit is 0.57 A
    f2.positions[1, 2] = 0.55
    assert collapsed_pair(f2) == "atoms 0 and 1 are 0.550 A apart (< 0.570 A)"
    # across the boundary: x = 0.1 and x = 7.7 in an 8 A box are 0.4 A apart
    h2 = Atoms("H2", positions=[[0.1, 0, 0], [7.7, 0, 0]], cell=[8, 8, 8], pbc=True)
    assert "0.400 A apart" in collapsed_pair(h2)
    h2.pbc = False
    assert collapsed_pair(h2) is None


def test_recorder_drops_and_counts_collapsed_frames():
    from ase import Atoms
    from ase.calculators.emt import EMT

    from facet.teacher.common import MP2020
    from facet.teacher.sampling import Recorder

    rec = Recorder("m-9", EMT(), MP2020(), compact=True)
    ok = Atoms("Cu2", positions=[[0, 0, 0], [0, 0, 2.5]], cell=[9, 9, 9], pbc=True)
    bad = Atoms("Cu2", positions=[[0, 0, 0], [0, 0, 0.4]], cell=[9, 9, 9], pbc=True)
    assert rec.record(ok, 0, 0) is not None
    assert rec.record(bad, 0, 1) is None
    assert list(rec.frames) == ["m-9-0-0"]
    assert len(rec.dropped) == 1 and rec.dropped[0].startswith("m-9-0-1: collapsed: atoms 0 and 1")


def test_clean_shards_rewrites_only_affected_shards_and_counts(tmp_path):
    """Collapsed atoms and teacher outliers (a force beyond 100 eV/A, a cohesive energy
    outside [-15, 5] eV/atom against the teacher's isolated atoms) are removed and counted."""
    import json

    from facet.teacher.distill2 import (
        clean_shards,
        read_shard,
        shard_path,
        summarize,
        write_shard,
        write_split_files,
    )

    def frame(mid, z, energy=-2.0, fz=1.0):
        return {"structure": {"lattice": {"matrix": (6 * np.eye(3)).tolist()},
                              "sites": [{"species": [{"element": "F", "occu": 1}],
                                         "abc": [0, 0, 0]},
                                        {"species": [{"element": "F", "occu": 1}],
                                         "abc": [0, 0, z / 6]}]},
                "uncorrected_total_energy": energy, "force": [[0, 0, fz], [0, 0, -fz]],
                "stress": np.zeros((3, 3)).tolist(), "mp_id": mid}

    data = tmp_path / "set"
    (data / "shards").mkdir(parents=True)
    (data / "teacher_e0.json").write_text(json.dumps({"F": -0.5}))
    (data / "splits.json").write_text(json.dumps({"train": ["a", "b", "c", "d", "e"],
                                                  "val": [], "test": []}))
    write_shard(shard_path(str(data), 0), [
        {"meta": {"mp_id": "a", "name": "a", "kind": "alloy", "n_frames": 4, "dropped": []},
         "frames": {"a-0-0": frame("a", 1.4), "a-0-1": frame("a", 0.3),
                    "a-0-2": frame("a", 1.4, fz=150.0), "a-0-3": frame("a", 1.4, energy=20.0)}}])
    write_shard(shard_path(str(data), 1), [
        {"meta": {"mp_id": "b", "name": "b", "kind": "alloy", "n_frames": 1, "dropped": []},
         "frames": {"b-0-0": frame("b", 1.5, energy=-30.0 + 0.01)}},  # -14.5 eV/atom: kept
        {"meta": {"mp_id": "c", "name": "c", "kind": "alloy", "n_frames": 1, "dropped": []},
         "frames": {"c-0-0": frame("c", 0.2)}}])  # its only frame collapsed
    write_shard(shard_path(str(data), 2), [
        {"meta": {"mp_id": "e", "name": "e", "kind": "alloy", "n_frames": 1, "dropped": []},
         "frames": {"e-0-0": frame("e", 1.5)}}])
    clean = (data / "shards" / "shard-0002.json.gz").read_bytes()
    gone = clean_shards(str(data))
    assert sorted(gone) == ["a-0-1", "a-0-2", "a-0-3", "c-0-0"]
    # c is labelled but has no frame left: counted as empty, not as waiting for labels (d)
    split = write_split_files(str(data), str(tmp_path / "out"), splits=("train",))["train"]
    assert (split["materials"], split["frames"], split["pending"], split["empty"]) == (3, 3, 1, 1)
    assert (data / "shards" / "shard-0002.json.gz").read_bytes() == clean  # not rewritten
    untouched = (data / "shards" / "shard-0001.json.gz").read_bytes()
    assert gone["a-0-1"].startswith("collapsed: atoms 0 and 1 are 0.300 A apart")
    assert gone["a-0-2"] == "teacher outlier: force component 150 eV/A > 100"
    assert gone["a-0-3"] == "teacher outlier: cohesive energy 10.5 eV/atom outside [-15, 5]"
    metas, frames = read_shard(shard_path(str(data), 0))
    assert list(frames["a"]) == ["a-0-0"] and metas[0]["n_frames"] == 1
    assert metas[0]["dropped"] == [f"{k}: {gone[k]}" for k in ("a-0-1", "a-0-2", "a-0-3")]
    assert clean_shards(str(data)) == {}
    assert (data / "shards" / "shard-0001.json.gz").read_bytes() == untouched
    assert summarize(str(data))["dropped_frames"] == 4
    assert clean_shards(str(data)) == {}  # idempotent


def test_the_extension_leaves_the_catalog_ids_shards_and_split_unchanged():
    """plan(): the catalog's materials keep their ids and split (the committed shards and
    splits.json stay valid); the extension starts on a fresh shard and has its own held-out
    materials."""
    from facet.teacher.distill2 import (
        SHARD_SIZE,
        material_ids,
        plan,
        shard_members,
    )

    base = catalog(0, ELEMENTS, counts=SMALL)
    base_ids = material_ids(len(base))
    metas = [{"mp_id": i, "kind": s.source} for i, s in zip(base_ids, base, strict=True)]
    elements_of = {i: set(s.atoms.get_chemical_symbols()) for i, s in zip(base_ids, base,
                                                                          strict=True)}
    base_split = split_by_material(metas, elements_of, 0)
    specs, ids, splits = plan(0, ELEMENTS, counts=SMALL)
    assert ids[:len(base)] == base_ids
    assert [s.name for s in specs[:len(base)]] == [s.name for s in base]
    in_base = set(base_ids)
    # the catalog's split stands, except that a held-out material may join train (a structure
    # twin of a training material, facet.teacher.twins): never the other way
    assert set(base_split["train"]) <= set(splits["train"])
    for name in ("val", "test"):
        assert set(m for m in splits[name] if m in in_base) <= set(base_split[name])
    ext = ids[len(base):]
    assert int(ext[0].rsplit("-", 1)[1]) % SHARD_SIZE == 0
    assert int(ext[0].rsplit("-", 1)[1]) >= len(base)
    members = shard_members(ids)
    for positions in members.values():  # no shard mixes catalog and extension materials
        assert len({p < len(base) for p in positions}) == 1
    assert sum(len(v) for v in members.values()) == len(ids)
    ext_set = set(ext)
    held = {name: [m for m in splits[name] if m in ext_set] for name in ("val", "test")}
    n_ext = len(ext)
    assert len(held["test"]) == pytest.approx(HELD_OUT["test"] * n_ext, abs=0.02 * n_ext)
    assert held["val"]


def test_the_teacher_loads_twice_in_one_process(monkeypatch):
    """``--workers 1`` labels in the process that already loaded the teacher for its element
    list: the second load must not set torch's inter-op threads again (torch raises
    "cannot set number of interop threads after parallel work has started")."""
    import sys
    import types

    from facet.teacher.common import load_teacher

    state = {"interop": 4}

    def set_interop(n):
        if state.get("set"):
            raise RuntimeError("Error: cannot set number of interop threads after parallel "
                               "work has started or set_num_interop_threads called")
        state.update(interop=n, set=True)

    torch = types.SimpleNamespace(set_num_threads=lambda n: None,
                                  get_num_interop_threads=lambda: state["interop"],
                                  set_num_interop_threads=set_interop)
    calc = types.SimpleNamespace(SevenNetCalculator=lambda name, device: (name, device))
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "sevenn", types.ModuleType("sevenn"))
    monkeypatch.setitem(sys.modules, "sevenn.calculator", calc)
    assert load_teacher() == load_teacher() == ("7net-0", "cpu")
    assert state["interop"] == 1
