"""Make the SevenNet-0 distillation dataset (data/distill) in the MPTrj JSON layout.

Run in the teacher environment (see scripts/requirements-teacher.txt), e.g.

    OMP_NUM_THREADS=1 nohup .venv-teacher/bin/python scripts/make_distill_dataset.py \\
        --out data/distill --seed 0 --workers 2 --cache /tmp/distill_cache > /tmp/distill.log &

Materials: pymatgen's bundled MP structures (<= 32 sites, ordered), ASE's 71 dcdft elemental
crystals and ~300 prototype substitutions over 64 elements
(``facet.teacher.structures``), put in one
seeded random order and numbered ``facet-distill-NNNNNN`` in that order. Each material gets the
frames of ``DISTILL_PROFILE`` (``facet.teacher.sampling``: volume search, strains, rattles, FIRE
steps, Langevin MD at two of 300/800/1500 K). ``--n-frames N`` keeps the first
ceil(N / planned frames per material) materials of that order, so a small run is a prefix of the
full one (a material can fall short of its plan, e.g. when FIRE converges at step 0).

Outputs in ``--out``: ``mptrj_distill.json.gz`` (gzip, mtime 0), ``splits.json`` (train/val/
test material ids, 90/5/5 by material, see :func:`split_materials`), ``manifest.json``,
``PROVENANCE.md``, ``stats.json``; with ``--figures DIR`` also the histograms as PNG.

Workers: each material is generated independently (own RNG seeded by seed and material name,
own single-threaded teacher), so the bytes written do not depend on ``--workers``. ``--cache``
keeps each finished material as a JSON file, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import time

from facet.teacher.common import (  # sets OMP_NUM_THREADS before torch loads
    CALC_KINDS,
    environment_versions,
    sha256_file,
    write_json,
)
from facet.teacher.provenance import write_manifest_and_provenance
from facet.teacher.sampling import Profile
from facet.teacher.structures import (
    dcdft_specs,
    prototype_specs,
    pymatgen_bundled_specs,
)

DISTILL_PROFILE = Profile(
    n_volume_steps=3, n_strain=3, strain_max=0.04, n_rattle=3, rattle_max=0.1,
    n_strain_rattle=2, relax_steps=8, md_temperatures=(300.0, 800.0, 1500.0),
    md_per_material=2, md_steps=8, md_stride=2, min_atoms=(4, 10), max_atoms=32,
)
SPLIT_FRACTIONS = {"train": 0.90, "val": 0.05, "test": 0.05}

_WORKER = {}


def all_specs(seed: int):
    """(ordered specs, skipped sources): every source, in one seeded random order."""
    import numpy as np

    bundled, skipped = pymatgen_bundled_specs(max_atoms=DISTILL_PROFILE.max_atoms)
    specs = bundled + dcdft_specs() + prototype_specs()
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValueError("duplicate material names among the sources")
    order = np.random.default_rng([seed, 7]).permutation(len(specs))
    return [specs[i] for i in order], skipped


def _init_worker():
    from facet.teacher.common import MP2020, load_teacher

    _WORKER["calc"], _WORKER["mp2020"] = load_teacher(), MP2020()


def _work(task):
    spec, mp_id, seed, cache = task
    path = os.path.join(cache, f"{mp_id}.json") if cache else None
    if path and os.path.exists(path):
        with open(path) as f:
            out = json.load(f)
        if out["meta"]["name"] == spec.name and out.get("profile") == repr(DISTILL_PROFILE):
            return out
    from facet.teacher.sampling import generate_material

    if "calc" not in _WORKER:  # loaded on the first material that is not cached
        _init_worker()
    t0 = time.time()
    out = generate_material(spec, mp_id, DISTILL_PROFILE, seed, _WORKER["calc"],
                            _WORKER["mp2020"])
    out = {"frames": out["frames"], "meta": out["meta"], "seconds": time.time() - t0,
           "profile": repr(DISTILL_PROFILE)}
    if path:
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(out, f, separators=(",", ":"))
        os.replace(tmp, path)
    return out


def split_materials(data: dict, seed: int) -> dict[str, list[str]]:
    """90/5/5 train/val/test by material, never leaving an element without training materials.

    Materials are visited in a seeded random order and fill test, then val; a material is sent to
    train instead if one of its elements would otherwise have no training material left.
    """
    import numpy as np

    mp_ids = list(data)
    elements = {m: {s["species"][0]["element"]
                    for s in next(iter(data[m].values()))["structure"]["sites"]} for m in mp_ids}
    in_train = {}
    for m in mp_ids:
        for el in elements[m]:
            in_train[el] = in_train.get(el, 0) + 1
    n = len(mp_ids)
    want = {"test": round(SPLIT_FRACTIONS["test"] * n), "val": round(SPLIT_FRACTIONS["val"] * n)}
    out = {"train": [], "val": [], "test": []}
    for i in np.random.default_rng([seed, 11]).permutation(n):
        m = mp_ids[i]
        target = next((k for k in ("test", "val") if len(out[k]) < want[k]), "train")
        if target != "train" and all(in_train[el] > 1 for el in elements[m]):
            for el in elements[m]:
                in_train[el] -= 1
        else:
            target = "train"
        out[target].append(m)
    return {k: sorted(v) for k, v in out.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="data/distill")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-frames", type=int, default=None,
                    help="keep the first ceil(N / planned frames per material) materials "
                         "(default: all materials)")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--cache", default=None, help="folder for per-material results (resume)")
    ap.add_argument("--figures", default=None, help="folder for the statistics PNGs")
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    if args.cache:
        os.makedirs(args.cache, exist_ok=True)

    specs, skipped = all_specs(args.seed)
    per = DISTILL_PROFILE.frames_per_material()
    n_mat = len(specs) if args.n_frames is None else min(len(specs), math.ceil(args.n_frames / per))
    tasks = [(spec, f"facet-distill-{i:06d}", args.seed, args.cache)
             for i, spec in enumerate(specs[:n_mat])]
    print(f"{n_mat} materials x {per} frames planned, {args.workers} worker(s)", flush=True)

    t0, results = time.time(), []
    if args.workers == 1:
        it = map(_work, tasks)
    else:
        pool = mp.get_context("spawn").Pool(args.workers)
        it = pool.imap(_work, tasks, chunksize=1)
    for i, out in enumerate(it):
        results.append(out)
        m = out["meta"]
        print(f"[{time.time() - t0:8.1f}s] {i + 1}/{n_mat} {m['mp_id']} {m['name']} "
              f"{m.get('n_atoms', '-')} atoms {m['n_frames']} frames "
              f"{out.get('seconds', 0):.1f}s", flush=True)
    if args.workers != 1:
        pool.close()
        pool.join()

    for r in results:  # frames a reader must refuse (facet.data: atoms closer than 0.5 A)
        r["frames"], dropped = _drop_overlapping(r["frames"])
        if dropped:
            r["meta"]["dropped_frames"] = dropped
            r["meta"]["n_frames"] = len(r["frames"])
            print(f"{r['meta']['mp_id']}: dropped {len(dropped)} frame(s) with atoms closer "
                  f"than {MIN_DISTANCE} A: {', '.join(dropped)}", flush=True)
    data = {r["meta"]["mp_id"]: r["frames"] for r in results if r["frames"]}
    metas = [r["meta"] for r in results]
    splits = split_materials(data, args.seed)
    json_path = os.path.join(args.out, "mptrj_distill.json.gz")
    write_json(json_path, data, compress=True)
    with open(os.path.join(args.out, "splits.json"), "w") as f:
        json.dump(splits, f, indent=1)
        f.write("\n")
    from facet.teacher.stats import dataset_statistics

    stats = dataset_statistics(data, splits, figures=args.figures)
    with open(os.path.join(args.out, "stats.json"), "w") as f:
        json.dump(stats, f, indent=1)
        f.write("\n")
    files = {n: sha256_file(os.path.join(args.out, n))
             for n in ("mptrj_distill.json.gz", "splits.json", "stats.json")}
    cmd = f"python scripts/make_distill_dataset.py --out {args.out} --seed {args.seed}"
    if args.n_frames is not None:
        cmd += f" --n-frames {args.n_frames}"
    write_manifest_and_provenance(
        args.out, title="SevenNet-0 distillation dataset (MPTrj layout)", command=cmd,
        seed=args.seed, profile=DISTILL_PROFILE, materials=metas, files=files,
        versions=environment_versions(), calc_kinds=CALC_KINDS, splits=splits, skipped=skipped,
    )
    n = sum(len(v) for v in data.values())
    print(f"wrote {n} frames of {len(data)} materials to {args.out} in {time.time() - t0:.0f} s",
          flush=True)
    return 0


MIN_DISTANCE = 0.5  # Angstrom; facet.data's physical minimum (frames.DEFAULT_MIN_DISTANCE)


def _drop_overlapping(frames: dict) -> tuple[dict, list[str]]:
    """``(kept, dropped ids)``: frames whose closest pair of atoms (periodic images included)
    is nearer than :data:`MIN_DISTANCE` are dropped (a strong rattle can produce them; no
    reader accepts them), the others kept in order."""
    import numpy as np
    from pymatgen.core import Structure

    kept, dropped = {}, []
    for fid, fr in frames.items():
        st = Structure.from_dict(fr["structure"])
        dmin = np.inf
        if len(st) > 1:
            dm = st.distance_matrix
            dmin = dm[~np.eye(len(st), dtype=bool)].min()
        if dmin < MIN_DISTANCE:
            dropped.append(fid)
        else:
            kept[fid] = fr
    return kept, dropped


if __name__ == "__main__":
    raise SystemExit(main())
