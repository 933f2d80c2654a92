"""Make the small bundled sample dataset (data/sample) labelled by SevenNet-0.

Run in the teacher environment (torch CPU + sevenn + pymatgen; see
scripts/requirements-teacher.txt), not in facet's:

    OMP_NUM_THREADS=1 .venv-teacher/bin/python scripts/make_sample_data.py \\
        --out data/sample --seed 0

Writes, in ``--out``:

* ``mptrj_sample.json``: the frames in the exact MPTrj JSON layout
  ``{mp_id: {"<mp_id>-<calc_id>-<ionic_step>": frame}}`` (stress in kBar, VASP sign);
* ``sample.extxyz``: the same frames, same order, in ASE units (energy eV, forces eV/A,
  stress eV/A^3 tensile-positive) with ``mp_id``, ``frame_id`` and ``config_type`` in info;
* ``manifest.json``: per-material metadata, counts, versions and the sha256 of both files;
* ``PROVENANCE.md``: the same in prose.

Material ids are synthetic (``facet-sample-NNNN``) and cannot be confused with real MP ids; the
source of each (pymatgen bundled MP structure, ASE dcdft element, or prototype substitution) is
recorded in the manifest. The output bytes depend only on the seed and the versions recorded.
"""

from __future__ import annotations

import argparse
import os
import time

from facet.teacher.common import (  # sets OMP_NUM_THREADS before torch loads
    CALC_KINDS,
    MP2020,
    environment_versions,
    load_teacher,
    sha256_file,
    write_json,
)
from facet.teacher.provenance import write_manifest_and_provenance
from facet.teacher.sampling import Profile, generate_material
from facet.teacher.structures import (
    dcdft_specs,
    prototype_spec,
    pymatgen_bundled_specs,
)

SAMPLE_PROFILE = Profile(
    n_volume_steps=2, n_strain=1, strain_max=0.04, n_rattle=2, rattle_max=0.08,
    n_strain_rattle=0, relax_steps=4, md_temperatures=(300.0, 800.0, 1500.0),
    md_per_material=1, md_steps=8, md_stride=4, min_atoms=(4, 12), max_atoms=24,
)

PYMATGEN_NAMES = ["Si.json", "CsCl.json", "Li2O.json", "SrTiO3.json", "TiO2.json", "VO2.json"]
DCDFT_NAMES = ["Cu", "Al", "Fe", "Mg", "W"]
PROTOTYPES = [
    ("rocksalt", "Na", "Cl"), ("rocksalt", "Mg", "O"), ("rocksalt", "Ni", "O"),
    ("rocksalt", "Li", "F"), ("zincblende", "Ga", "As"), ("wurtzite", "Zn", "O"),
    ("wurtzite", "Ga", "N"), ("fluorite", "Ca", "F"), ("perovskite", "Ba", "Ti", "O"),
    ("spinel", "Mg", "Al", "O"), ("mos2", "Mo", "S"),
]


def sample_specs():
    used, _ = pymatgen_bundled_specs(max_atoms=SAMPLE_PROFILE.max_atoms)
    by_name = {s.name: s for s in used + dcdft_specs()}
    specs = [by_name[f"pymatgen:{n}"] for n in PYMATGEN_NAMES]
    specs += [by_name[f"dcdft:{n}"] for n in DCDFT_NAMES]
    specs += [prototype_spec(*p) for p in PROTOTYPES]
    return specs


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="data/sample")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)

    from ase.io import write

    calc, mp2020 = load_teacher(), MP2020()
    data, extxyz, metas = {}, [], []
    t0 = time.time()
    for i, spec in enumerate(sample_specs()):
        mp_id = f"facet-sample-{i:04d}"
        out = generate_material(spec, mp_id, SAMPLE_PROFILE, args.seed, calc, mp2020,
                                keep_extxyz=True)
        metas.append(out["meta"])
        if out["frames"]:
            data[mp_id] = out["frames"]
        extxyz.extend(out["extxyz"])
        print(f"[{time.time() - t0:7.1f}s] {mp_id} {spec.name}: {len(out['frames'])} frames",
              flush=True)

    json_path = os.path.join(args.out, "mptrj_sample.json")
    xyz_path = os.path.join(args.out, "sample.extxyz")
    write_json(json_path, data, compress=False)
    write(xyz_path, extxyz, format="extxyz")
    files = {os.path.basename(p): sha256_file(p) for p in (json_path, xyz_path)}
    write_manifest_and_provenance(
        args.out, title="Sample dataset (SevenNet-0 labels, MPTrj layout)",
        command=f"python scripts/make_sample_data.py --out {args.out} --seed {args.seed}",
        seed=args.seed, profile=SAMPLE_PROFILE, materials=metas, files=files,
        versions=environment_versions(), calc_kinds=CALC_KINDS, splits=None, skipped={},
    )
    n = sum(len(v) for v in data.values())
    print(f"wrote {n} frames of {len(data)} materials to {args.out} in {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
