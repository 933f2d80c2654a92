"""Cross-teacher check of the default model against CHGNet (issue 7, scope 3).

The default model is distilled from SevenNet-0, which was trained on MPTrj's *uncorrected*
energies; CHGNet (0.3.0 weights, shipped in the ``chgnet`` wheel) was trained on the
MP2020-*corrected* energies. To compare energies, the MP2020 correction of each frame
(``corrected_total_energy - uncorrected_total_energy`` from the distillation set, computed by
pymatgen's MaterialsProject2020Compatibility when the set was made) is added to Facet's and
SevenNet-0's energies. Forces and stresses carry no correction and are compared directly.
The teacher-to-teacher disagreement (SevenNet-0 vs CHGNet) is reported beside Facet's, since
Facet cannot be closer to CHGNet than its own teacher is, except by chance.

Two steps, in two environments (CHGNet's torch stack is not facet's)::

    /path/to/chgnet-venv/bin/python facet/studies/chgnet_crosscheck.py label \
        --data data/distill --split test --n 120 --out runs/chgnet_labels.json
    python -m facet.studies.chgnet_crosscheck compare --labels runs/chgnet_labels.json \
        --model default --out docs/benchmarks/accuracy

(``python -m facet.studies.chgnet_crosscheck label`` where facet is installed there, e.g.
``pip install --no-deps facet-mlip``.)

``label`` imports neither facet nor JAX; frames are read with the standard library (gzip +
json) in the MPTrj layout (docs/data.md), every ``--stride``-th frame of the split, in file
order, so the selection is deterministic. ``compare`` reads the same frames through
:func:`facet.data.mptrj.iter_mptrj`, which converts MPTrj's stress (kBar, VASP sign) to ASE's
eV/A^3 (positive = tensile), the units and sign of CHGNet's ASE calculator.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

#: The distillation set's frames inside ``--data`` (MPTrj layout, gzip).
DISTILL_FILE = "mptrj_distill.json.gz"


def _frames(data: str, split: str, n: int):
    """``(material_id, frame_id, frame_dict)`` of the split, at most ``n``, evenly strided."""
    d = Path(data)
    splits = json.loads((d / "splits.json").read_text())
    keep = set(splits[split])
    with gzip.open(d / DISTILL_FILE, "rt") as fh:
        data_all = json.load(fh)
    rows = [(m, f, fr) for m, frames in data_all.items() if m in keep for f, fr in frames.items()]
    stride = max(1, len(rows) // n)
    return rows[::stride][:n]


def cmd_label(args) -> int:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch
    from chgnet.model import CHGNet
    from chgnet.model.dynamics import CHGNetCalculator
    from pymatgen.core import Structure
    from pymatgen.io.ase import AseAtomsAdaptor

    torch.set_num_threads(1)
    model = CHGNet.load()
    calc = CHGNetCalculator(model=model, use_device="cpu", on_isolated_atoms="ignore")
    out = []
    t0 = time.perf_counter()
    for mid, fid, fr in _frames(args.data, args.split, args.n):
        atoms = AseAtomsAdaptor.get_atoms(Structure.from_dict(fr["structure"]))
        atoms.calc = calc
        out.append(
            {
                "material_id": mid,
                "frame_id": fid,
                "energy": float(atoms.get_potential_energy()),
                "forces": atoms.get_forces().tolist(),
                "stress": atoms.get_stress().tolist(),
            }
        )
    meta = {
        "chgnet_version": __import__("chgnet").__version__,
        "model": model.version,
        "torch": torch.__version__,
        "seconds": time.perf_counter() - t0,
        "split": args.split,
        "data": args.data,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"meta": meta, "frames": out}))
    print(f"labelled {len(out)} frames with CHGNet {meta['model']} in {meta['seconds']:.0f} s")
    return 0


def reference_frames(data: str, keys) -> dict:
    """The labelled frames of ``data`` as :func:`facet.data.mptrj.iter_mptrj` reads them.

    Returns ``{(material_id, frame_id): Frame}`` for ``keys``: positions and cell in Angstrom,
    forces in eV/A, stress ``(3, 3)`` in eV/A^3 with ASE's sign (positive = tensile; MPTrj's kBar,
    VASP sign, converted once by the reader), ``energy`` the uncorrected total energy (eV) and
    ``info["corrected_total_energy"]`` the MP2020-corrected one. A key missing from the file raises
    ``KeyError`` naming the file and the frames.
    """
    from facet.data.mptrj import iter_mptrj

    keys = set(keys)
    path = Path(data) / DISTILL_FILE
    found = {}
    for fr in iter_mptrj(path, label="uncorrected_total_energy"):
        if (fr.material_id, fr.frame_id) in keys:
            found[(fr.material_id, fr.frame_id)] = fr
    missing = sorted(keys - found.keys())
    if missing:
        raise KeyError(f"{len(missing)} labelled frame(s) are not in {path}: {missing[:5]}")
    return found


def compare(labels: dict, data: str, model: str, *, calc=None) -> dict:
    """Facet and SevenNet-0 against CHGNet on the labelled frames (meV/atom, meV/A, meV/A^3).

    ``calc`` is the ASE calculator standing for Facet (default ``FacetCalculator(model=model)``).
    """
    from ase import Atoms

    if calc is None:
        from facet.calculator import FacetCalculator

        calc = FacetCalculator(model=model)
    keys = [(row["material_id"], row["frame_id"]) for row in labels["frames"]]
    by_id = reference_frames(data, keys)
    err = {k: [] for k in ("facet_e", "teacher_e", "facet_f", "teacher_f", "facet_s", "teacher_s")}
    n_corrected = 0
    for key, row in zip(keys, labels["frames"], strict=True):
        fr = by_id[key]
        atoms = Atoms(numbers=fr.numbers, positions=fr.positions, cell=fr.cell, pbc=fr.pbc)
        atoms.calc = calc
        n = len(atoms)
        corr = 0.0
        if fr.info.get("corrected_total_energy") is not None:
            corr = fr.info["corrected_total_energy"] - fr.energy
            n_corrected += 1
        e_facet = atoms.get_potential_energy() + corr
        e_teacher = fr.energy + corr
        err["facet_e"].append(1e3 * (e_facet - row["energy"]) / n)
        err["teacher_e"].append(1e3 * (e_teacher - row["energy"]) / n)
        err["facet_f"].append(1e3 * (atoms.get_forces() - np.asarray(row["forces"])).ravel())
        err["teacher_f"].append(1e3 * (fr.forces - np.asarray(row["forces"])).ravel())
        chg_s = _voigt_to_full(row["stress"])
        err["facet_s"].append(1e3 * (_voigt_to_full(atoms.get_stress()) - chg_s).ravel())
        err["teacher_s"].append(1e3 * (fr.stress - chg_s).ravel())
    res = {}
    for who in ("facet", "teacher"):
        res[who] = {
            "energy_mae_mev_atom": float(np.mean(np.abs(err[f"{who}_e"]))),
            "energy_mean_diff_mev_atom": float(np.mean(err[f"{who}_e"])),
            "forces_mae_mev_a": float(np.mean(np.abs(np.concatenate(err[f"{who}_f"])))),
            "stress_mae_mev_a3": float(np.mean(np.abs(np.concatenate(err[f"{who}_s"])))),
        }
    res["frames"] = len(labels["frames"])
    res["frames_with_mp2020_correction"] = n_corrected
    res["chgnet"] = labels["meta"]
    res["model"] = model
    return res


def _voigt_to_full(s) -> np.ndarray:
    s = np.asarray(s, dtype=float)
    if s.shape == (3, 3):
        return s
    xx, yy, zz, yz, xz, xy = s
    return np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])


def cmd_compare(args) -> int:
    labels = json.loads(Path(args.labels).read_text())
    res = compare(labels, labels["meta"]["data"], args.model)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    res["command"] = "python -m facet.studies.chgnet_crosscheck " + " ".join(sys.argv[1:])
    (out / "chgnet_crosscheck.json").write_text(json.dumps(res, indent=1) + "\n")
    f, t = res["facet"], res["teacher"]
    md = [
        "# Cross-teacher check: default model vs CHGNet",
        "",
        f"{res['frames']} frames of the `{labels['meta']['split']}` split of data/distill, "
        f"labelled by CHGNet {labels['meta']['model']} (chgnet {labels['meta']['chgnet_version']}"
        "). Energies compared after adding each frame's MP2020 correction to the "
        f"uncorrected Facet and SevenNet-0 energies ({res['frames_with_mp2020_correction']} "
        "frames carry a correction). Method: `facet/studies/chgnet_crosscheck.py`.",
        "",
        "| vs CHGNet | energy MAE (meV/atom) | mean energy difference (meV/atom) | "
        "force MAE (meV/A) | stress MAE (meV/A^3) |",
        "|---|---|---|---|---|",
        f"| Facet default model | {f['energy_mae_mev_atom']:.1f} | "
        f"{f['energy_mean_diff_mev_atom']:+.1f} | {f['forces_mae_mev_a']:.1f} | "
        f"{f['stress_mae_mev_a3']:.2f} |",
        f"| SevenNet-0 (its teacher) | {t['energy_mae_mev_atom']:.1f} | "
        f"{t['energy_mean_diff_mev_atom']:+.1f} | {t['forces_mae_mev_a']:.1f} | "
        f"{t['stress_mae_mev_a3']:.2f} |",
        "",
        "The second row is the disagreement between the two MPTrj-trained teachers; a "
        "well-trained student of SevenNet-0 would sit close to it. Facet's distance from it is "
        "its own training error (see the model card).",
        "",
    ]
    (out / "chgnet_crosscheck.md").write_text("\n".join(md))
    print("\n".join(md))
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    lab = sub.add_parser("label", help="label frames with CHGNet (run in CHGNet's venv)")
    lab.add_argument("--data", default="data/distill")
    lab.add_argument("--split", default="test")
    lab.add_argument("--n", type=int, default=120)
    lab.add_argument("--out", required=True)
    cmp_ = sub.add_parser("compare", help="compare Facet and SevenNet-0 with the CHGNet labels")
    cmp_.add_argument("--labels", required=True)
    cmp_.add_argument("--model", default="default")
    cmp_.add_argument("--out", default="docs/benchmarks/accuracy")
    args = ap.parse_args(argv)
    return cmd_label(args) if args.cmd == "label" else cmd_compare(args)


if __name__ == "__main__":
    sys.exit(main())
