"""The broad distillation set ``data/distill2``: SevenNet-0 labels of ~5,000 materials in shards.

Run in the teacher environment (``scripts/requirements-teacher.txt``, facet installed with
``--no-deps``) through ``scripts/make_distill2_dataset.py``. Materials come from
:func:`facet.teacher.catalog.catalog` (eight kinds, one seeded order), then its extension
:func:`facet.teacher.compounds.common_compounds` (kind ``common``: charge-balanced compounds in
the prototypes real ones take, from the next shard boundary on; see :func:`plan`). Each material
gets the frames of :data:`PROFILE`:

* bulk kinds (``mp-bulk``, ``mp-substituted``, ``elemental``, ``prototype``, ``alloy``,
  ``vacancy``, ``common``), calc 0, static single points: the cell repeated to ``min_atoms``
  (drawn per material), two points of a secant search for the teacher's zero-pressure volume (as in
  :func:`facet.teacher.sampling.generate_material`), the structure at the next secant
  estimate, two random symmetric strains up to +-10 %, a Gaussian rattle and a strain + rattle;
* calc 1: a short FIRE relaxation (ASE, FrechetCellFilter for bulk, positions only for
  surfaces and molecules) from a strained and rattled start, every step recorded;
* calc 2: Langevin MD at a temperature drawn uniformly in 300-2,000 K (300-1,000 K for
  molecules), from Maxwell-Boltzmann velocities, two snapshots;
* surfaces and molecules keep their cell: no volume search and no strain; three rattles.

Frame keys are ``<mp_id>-<calc_id>-<step>``; the MD temperature of each material is in the
manifest. Randomness: one generator per material seeded with (seed, crc32(name)), so the frames
of a material do not depend on the others, on the order or on the number of workers.

Storage (``--out``): ``shards/shard-NNNN.json.gz``, each the MPTrj layout
(``{mp_id: {frame_id: frame}}``) of :data:`SHARD_SIZE` consecutive materials, written with
compact structure dicts (:func:`facet.teacher.common.compact_frame`); ``teacher_e0.json`` holds
the teacher's energies of isolated atoms (one atom in a 20 A box), the per-element reference
energies the student is anchored to. A shard is written once all its materials are labelled, so
an interrupted run resumes at the first missing shard (``--cache`` also keeps each finished
material). ``--finalize`` writes ``splits.json``, ``stats.json``, ``manifest.json`` and
``PROVENANCE.md`` from the shards present.

The shards on disk (paths, reading and writing, cleaning of teacher outliers, the split files
and the counts) are :mod:`facet.teacher.shards`; this module re-exports its names.
"""

from __future__ import annotations

import json
import os
import time
import zlib
from dataclasses import dataclass

import numpy as np
from ase import Atoms, units

from facet.teacher.common import MP2020
from facet.teacher.sampling import (
    Recorder,
    langevin_frames,
    rattled,
    record_relaxation,
    scaled,
    strained,
    volume_search,
)
from facet.teacher.shards import (
    COHESIVE_RANGE,
    MAX_FORCE,
    bad_frame,
    clean_results,
    clean_shards,
    meta_path,
    read_shard,
    read_shard_meta,
    shard_done,
    shard_path,
    shard_paths,
    summarize,
    summary_markdown,
    write_shard,
    write_split_files,
)
from facet.teacher.structures import supercell_for

__all__ = [
    # the labelling (this module)
    "BULK_KINDS", "CALC_KINDS", "HELD_OUT", "MIN_TRAIN_MATERIALS", "PROFILE", "SHARD_SIZE",
    "Profile2", "elapsed", "generate", "material_ids", "material_index", "plan", "run",
    "shard_members", "split_by_material",
    "teacher_isolated_atom_energies", "write_provenance",
    # the shards on disk (facet.teacher.shards, re-exported)
    "COHESIVE_RANGE", "MAX_FORCE", "bad_frame", "clean_results", "clean_shards", "meta_path",
    "read_shard", "read_shard_meta", "shard_done", "shard_path", "shard_paths", "summarize",
    "summary_markdown", "write_shard", "write_split_files",
]

SHARD_SIZE = 100
BULK_KINDS = ("mp-bulk", "mp-substituted", "elemental", "prototype", "alloy", "vacancy",
              "common")
HELD_OUT = {"test": 0.06, "val": 0.03}  # fraction of each kind's materials
MIN_TRAIN_MATERIALS = 50  # an element keeps at least this many training materials if it can

CALC_KINDS = {
    0: "static: volume search, equilibrium, strains (bulk), rattles (independent single points)",
    1: "FIRE relaxation from a strained and rattled start (cell too for bulk kinds)",
    2: "Langevin MD at the material's temperature (manifest: md_temperature_K)",
}


@dataclass(frozen=True)
class Profile2:
    n_volume_points: int = 2
    n_strain: int = 2
    strain_max: float = 0.10
    n_rattle: int = 1
    n_rattle_fixed_cell: int = 3
    rattle_max: float = 0.12  # A; sigma uniform in [0.01, rattle_max]
    relax_steps: int = 3
    md_temperature_K: tuple[float, float] = (300.0, 2000.0)
    md_temperature_molecule_K: tuple[float, float] = (300.0, 1000.0)
    md_snapshots: int = 2
    md_stride: int = 3
    min_atoms: tuple[int, int] = (4, 10)
    max_atoms: int = 28


PROFILE = Profile2()


def _base(spec, rng, profile: Profile2, bulk_kind: bool):
    """The periodic cell to sample: bulk kinds repeated to at least ``min_atoms`` (drawn)."""
    base = spec.atoms
    if bulk_kind:
        n_min = int(rng.integers(profile.min_atoms[0], profile.min_atoms[1] + 1))
        base = supercell_for(base, n_min, profile.max_atoms)
    return Atoms(base.numbers, positions=base.positions, cell=base.cell[:], pbc=True)


def _static_frames(rec: Recorder, base, rng, profile: Profile2, bulk_kind: bool, meta: dict):
    """Calc 0: for bulk kinds the volume search (``equilibrium_scale`` into ``meta``), then the
    equilibrium, strains (bulk), rattles and a strain + rattle (bulk). Returns the
    equilibrium structure."""
    eq, step = base, 0
    if bulk_kind:
        s_eq, step = volume_search(rec, base, profile.n_volume_points)
        eq = scaled(base, s_eq)
        meta["equilibrium_scale"] = round(s_eq, 6)
    rec.record(eq, 0, step)
    step += 1
    if bulk_kind:
        for _ in range(profile.n_strain):
            rec.record(strained(eq, rng, profile.strain_max), 0, step)
            step += 1
        n_rattle = profile.n_rattle
    else:
        n_rattle = profile.n_rattle_fixed_cell
    for _ in range(n_rattle):
        rec.record(rattled(eq, rng, profile.rattle_max), 0, step)
        step += 1
    if bulk_kind:
        rec.record(rattled(strained(eq, rng, profile.strain_max), rng, profile.rattle_max),
                   0, step)
    return eq


def _md_temperature(spec, rng, profile: Profile2) -> float:
    lo, hi = (profile.md_temperature_K if spec.source != "molecule"
              else profile.md_temperature_molecule_K)
    return float(round(rng.uniform(lo, hi)))


def generate(spec, mp_id: str, seed: int, calc, mp2020: MP2020, profile: Profile2 = PROFILE):
    """``{"frames", "meta"}`` of one material (see the module docstring for what is sampled)."""
    rng = np.random.default_rng([seed, zlib.crc32(spec.name.encode())])
    meta = {"mp_id": mp_id, "name": spec.name, "kind": spec.source, "prototype": spec.prototype}
    bulk_kind = spec.source in BULK_KINDS
    base = _base(spec, rng, profile, bulk_kind)
    if len(base) > profile.max_atoms:
        meta.update(n_frames=0, skipped=f"{len(base)} atoms > max_atoms {profile.max_atoms}")
        return {"frames": {}, "meta": meta}
    rec = Recorder(mp_id, calc, mp2020, compact=True)
    if len(base) == 1:  # an isolated atom: one frame (rattles, FIRE and MD would repeat it)
        rec.record(base, 0, 0)
        meta.update(formula=base.get_chemical_formula(), n_atoms=1, n_frames=len(rec.frames),
                    dropped=rec.dropped)
        return {"frames": rec.frames, "meta": meta}

    eq = _static_frames(rec, base, rng, profile, bulk_kind, meta)
    # calc 1: FIRE (the cell too for bulk kinds) from a strained (bulk) and rattled start
    start = rattled(strained(eq, rng, 0.04) if bulk_kind else eq, rng, profile.rattle_max)
    record_relaxation(rec, start, calc, profile.relax_steps, cell=bulk_kind)
    # calc 2: Langevin MD at a drawn temperature
    temp = _md_temperature(spec, rng, profile)
    light = bool(set(eq.get_chemical_symbols()) & {"H", "Li", "Be", "He"})
    langevin_frames(rec, eq, rng, calc, temp=temp, dt=(0.5 if light else 1.5) * units.fs,
                    friction=0.02 / units.fs, snapshots=profile.md_snapshots,
                    stride=profile.md_stride, calc_id=2)
    meta.update(formula=base.get_chemical_formula(mode="reduce"), n_atoms=len(base),
                md_temperature_K=temp, n_frames=len(rec.frames), dropped=rec.dropped)
    return {"frames": rec.frames, "meta": meta}


def teacher_isolated_atom_energies(calc, elements, box: float = 20.0) -> dict[str, float]:
    """The teacher's energy (eV) of each element's isolated atom in a periodic ``box``."""
    out = {}
    for el in elements:
        atoms = Atoms(el, positions=[(box / 2,) * 3], cell=np.eye(3) * box, pbc=True)
        atoms.calc = calc
        out[el] = float(atoms.get_potential_energy())
    return out


def split_by_material(metas: list[dict], elements_of: dict[str, set[str]], seed: int,
                      min_train: int = MIN_TRAIN_MATERIALS) -> dict[str, list[str]]:
    """``metas``: ``{"mp_id", "kind"}`` per material (known from the catalog before labelling).

    Held-out split by material, stratified by kind: :data:`HELD_OUT` of each kind's materials
    go to test and val; a material stays in train if moving it would leave one of its elements
    with fewer than ``min(min_train, n - 1)`` training materials (``n``: the
    materials holding it; at least one)."""
    n_train: dict[str, int] = {}
    for m in metas:
        for el in elements_of[m["mp_id"]]:
            n_train[el] = n_train.get(el, 0) + 1
    # an element keeps min(min_train, its materials - 1) training materials, at least 1
    floor = {el: max(1, min(min_train, n - 1)) for el, n in n_train.items()}
    out = {"train": [], "val": [], "test": []}
    kinds = sorted({m["kind"] for m in metas})
    rng = np.random.default_rng([seed, 13])
    # Each kind's materials in a seeded order, the kinds interleaved by relative position, so
    # that no kind finds its elements' held-out allowance used up by the kinds before it.
    queue, want = [], {}
    for kind in kinds:
        ids = [m["mp_id"] for m in metas if m["kind"] == kind]
        want[kind] = {k: max(1, round(f * len(ids))) for k, f in HELD_OUT.items()}
        queue += [((r + 0.5) / len(ids), kind, ids[i])
                  for r, i in enumerate(rng.permutation(len(ids)))]
    for _, kind, mid in sorted(queue):
        target = next((k for k in ("test", "val") if want[kind][k] > 0), "train")
        if target != "train" and all(n_train[el] - 1 >= floor[el] for el in elements_of[mid]):
            for el in elements_of[mid]:
                n_train[el] -= 1
            want[kind][target] -= 1
        else:
            target = "train"
        out[target].append(mid)
    return {k: sorted(v) for k, v in out.items()}


def elapsed(t0: float) -> str:
    return f"[{time.time() - t0:8.1f}s]"


# --- the run: catalog -> splits -> labelled shards ------------------------------------------

_WORKER: dict = {}


def _work(task):
    import warnings

    warnings.filterwarnings("ignore")  # pymatgen compatibility chatter, once per frame
    spec, mp_id, seed, cache = task
    path = os.path.join(cache, f"{mp_id}.json") if cache else None
    if path and os.path.exists(path):
        with open(path) as f:
            out = json.load(f)
        if out["meta"]["name"] == spec.name and out.get("profile") == repr(PROFILE):
            return out
    if "calc" not in _WORKER:
        from facet.teacher.common import load_teacher

        _WORKER["calc"], _WORKER["mp2020"] = load_teacher(), MP2020()
    t0 = time.time()
    out = generate(spec, mp_id, seed, _WORKER["calc"], _WORKER["mp2020"])
    out["meta"]["seconds"] = round(time.time() - t0, 2)
    out["profile"] = repr(PROFILE)
    if path:
        with open(path + ".tmp", "w") as f:
            json.dump(out, f, separators=(",", ":"))
        os.replace(path + ".tmp", path)
    return out


def material_ids(n: int, start: int = 0) -> list[str]:
    return [f"facet-distill2-{i:06d}" for i in range(start, start + n)]


def material_index(mp_id: str) -> int:
    """The position of a material in the labelling order (its shard is ``index // SHARD_SIZE``)."""
    return int(mp_id.rsplit("-", 1)[1])


def shard_members(ids: list[str]) -> dict[int, list[int]]:
    """Shard number -> the positions in ``ids`` of its materials (by :func:`material_index`: the
    extension starts on a fresh shard, so the numbering has a gap before it)."""
    members: dict[int, list[int]] = {}
    for i, mid in enumerate(ids):
        members.setdefault(material_index(mid) // SHARD_SIZE, []).append(i)
    return members


def plan(seed: int, elements, counts: dict[str, int] | None = None
         ) -> tuple[list, list[str], dict[str, list[str]]]:
    """(specs in labelling order, their mp_ids, the split by material).

    First the catalog (:func:`facet.teacher.catalog.catalog`; ``counts`` as there), then the
    extension (:func:`facet.teacher.compounds.common_compounds`) from the next shard boundary on,
    so that the catalog's shards and ids stay exactly those of the first labelling. The
    extension is split on its own (:func:`split_by_material`, the same fractions). Last, a
    held-out material that is one structure with a training material under another name joins
    train, twins held out on both sides go to test (:mod:`facet.teacher.twins`), and a kind left
    without test materials takes one of its validation materials: materials only ever leave the
    held-out side, or validation, never train."""
    from facet.teacher.catalog import catalog
    from facet.teacher.compounds import common_compounds
    from facet.teacher.twins import join_twins, structure_twins

    def split(specs, ids):
        metas = [{"mp_id": i, "kind": s.source} for i, s in zip(ids, specs, strict=True)]
        elements_of = {i: set(s.atoms.get_chemical_symbols())
                       for i, s in zip(ids, specs, strict=True)}
        return split_by_material(metas, elements_of, seed)

    specs = catalog(seed, elements, counts)
    ids = material_ids(len(specs))
    splits = split(specs, ids)
    ext = common_compounds(seed, elements)
    ext_ids = material_ids(len(ext), start=-(-len(specs) // SHARD_SIZE) * SHARD_SIZE)
    for name, members in split(ext, ext_ids).items():
        splits[name] = sorted(splits[name] + members)
    specs, ids = specs + ext, ids + ext_ids
    splits, _ = join_twins(splits, structure_twins([s.atoms for s in specs], ids))
    # a kind whose test materials all joined train takes one of its validation materials
    kind = {i: s.source for i, s in zip(ids, specs, strict=True)}
    for k in sorted(set(kind.values()) - {kind[m] for m in splits["test"]}):
        val = [m for m in splits["val"] if kind[m] == k]
        if val:
            splits["val"].remove(val[0])
            splits["test"] = sorted(splits["test"] + val[:1])
    return specs, ids, splits


def run(out: str, seed: int, workers: int, cache: str | None, max_shards: int | None,
        stop_at: float | None) -> int:
    """Label shards in order until all are done, ``max_shards`` new ones are written, or the
    wall clock passes ``stop_at`` (a Unix time: checked after each shard is written; the
    materials finished beyond it stay in ``cache``)."""
    import multiprocessing as mp

    from ase.data import chemical_symbols

    from facet.teacher.common import load_teacher

    t0 = time.time()
    os.makedirs(os.path.join(out, "shards"), exist_ok=True)
    if cache:
        os.makedirs(cache, exist_ok=True)
    calc = load_teacher()
    elements = sorted(chemical_symbols[int(z)] for z in calc.type_map)
    e0_path = os.path.join(out, "teacher_e0.json")
    if not os.path.exists(e0_path):
        with open(e0_path, "w") as f:
            json.dump(teacher_isolated_atom_energies(calc, elements), f, indent=1)
            f.write("\n")
    del calc
    with open(e0_path) as f:
        e0 = json.load(f)
    specs, ids, splits = plan(seed, elements)
    with open(os.path.join(out, "splits.json"), "w") as f:
        json.dump(splits, f, indent=1)
        f.write("\n")
    members = shard_members(ids)
    todo = [k for k in sorted(members) if not shard_done(shard_path(out, k))]
    if max_shards is not None:
        todo = todo[:max_shards]
    print(f"{elapsed(t0)} {len(specs)} materials in {len(members)} shards; {len(todo)} to label "
          f"with {workers} worker(s)", flush=True)
    # One ordered stream of every material of the shards to do, so that no worker waits at the
    # end of a shard for the other's last material; a shard is written once its last result is in.
    tasks = [(specs[i], ids[i], seed, cache) for k in todo for i in members[k]]
    pool = mp.get_context("spawn").Pool(workers) if workers > 1 else None
    try:
        stream = pool.imap(_work, tasks, chunksize=1) if pool else map(_work, tasks)
        results: list[dict] = []
        shard_iter = iter(todo)
        k = next(shard_iter, None)
        for res in stream:
            results.append(res)
            if len(results) < len(members[k]):
                continue
            clean_results(results, e0)
            write_shard(shard_path(out, k), results)
            n = sum(r["meta"]["n_frames"] for r in results)
            print(f"{elapsed(t0)} shard {k}: {len(results)} materials, {n} frames", flush=True)
            results, k = [], next(shard_iter, None)
            if k is None:
                break
            if stop_at is not None and time.time() > stop_at:
                print(f"{elapsed(t0)} stop time reached before shard {k}", flush=True)
                break
    finally:
        if pool:
            pool.terminate()
            pool.join()
    return 0


def write_provenance(data_dir: str, versions: dict[str, str], total_shards: int) -> str:
    """``PROVENANCE.md`` of the shards present: command, teacher, versions, profile, the
    per-kind counts of :func:`summary_markdown` and each shard's sha256 (deterministic bytes
    for the same shards and versions)."""
    import dataclasses
    import glob

    from facet.teacher.common import sha256_file
    from facet.teacher.provenance import LABEL_CONVENTION

    s = summarize(data_dir)
    lines = ["# SevenNet-0 broad distillation set (MPTrj layout, shards)", "",
             "Generated, not hand-edited. Generate or resume with (teacher environment, see "
             "docs/datasets.md):", "", "```",
             "OMP_NUM_THREADS=1 python scripts/make_distill2_dataset.py --out data/distill2 "
             "--workers 2 --cache runs/distill2_cache", "```", "",
             "- teacher: SevenNet-0 (sevenn pretrained '7net-0', 11Jul2024 checkpoint), CPU, "
             "1 thread per worker",
             "- materials and order: `facet.teacher.distill2.plan(seed=0, teacher elements)`: "
             "`facet.teacher.catalog.catalog`, then its extension "
             "`facet.teacher.compounds.common_compounds` (kind `common`) from the next shard "
             "boundary on",
             "- reference energies: `teacher_e0.json`, the teacher's isolated atoms in a 20 A box",
             "", "## Counts", "", summary_markdown(s, total_shards), "## Versions", ""]
    lines += [f"- {k}: {v}" for k, v in versions.items()]
    lines += ["", "## Label convention", ""]
    conv = dict(LABEL_CONVENTION)
    conv["force"] = "N x 3, eV/A, rounded to 1e-4"
    conv["stress"] = ("3 x 3, kBar, VASP sign (positive = compressive): -stress_ase * "
                      "1602.1766208, rounded to 1e-3 kBar")
    conv["structure"] = ("pymatgen Structure dict with lattice (matrix, pbc) and per site "
                         "species and fractional abc (rounded to 1e-8) only")
    conv["ef_per_atom, e_per_atom_relaxed, ef_per_atom_relaxed, magmom, bandgap"] = (
        "absent (not computable from the teacher)")
    lines += [f"- `{k}`: {v}" for k, v in conv.items()]
    lines += ["", "## Trajectory kinds (calc_id in the frame key)", ""]
    lines += [f"- {k}: {v}" for k, v in CALC_KINDS.items()]
    lines += ["", "## Sampling profile (facet.teacher.distill2.PROFILE)", ""]
    lines += [f"- {k}: {v}" for k, v in dataclasses.asdict(PROFILE).items()]
    lines += ["", "## Files (sha256)", ""]
    for p in sorted(glob.glob(os.path.join(data_dir, "shards", "shard-*"))):
        if p.endswith((".json.gz", ".meta.json")):
            lines.append(f"- `shards/{os.path.basename(p)}`: `{sha256_file(p)}`")
    for name in ("splits.json", "teacher_e0.json"):
        lines.append(f"- `{name}`: `{sha256_file(os.path.join(data_dir, name))}`")
    text = "\n".join(lines) + "\n"
    with open(os.path.join(data_dir, "PROVENANCE.md"), "w") as f:
        f.write(text)
    return text
