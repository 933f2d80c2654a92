"""Structures, predictions, relaxations and the report for :mod:`.trim`.

Conventions: energies in eV (reported as meV/atom), forces eV/A (reported meV/A), stresses
ASE Voigt ``xx yy zz yz xz xy`` in eV/A^3, tensile positive (reported in GPa, 1 eV/A^3 =
160.21766 GPa). Relaxation: ASE FIRE on a FrechetCellFilter (positions and cell), as Matbench
Discovery does (fmax 0.05 eV/A, at most 500 steps).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.build import bulk

from facet.bench.meta import cpu_model

EV_A3_TO_GPA = 160.21766208


# ----------------------------------------------------------------------------- structures
def _perturbed(atoms: Atoms, rng, rattle: float, strain: float, expand: float = 0.0) -> Atoms:
    """Copy with Gaussian displacements (std ``rattle`` A), a random symmetric strain with
    entries up to ``strain`` and an isotropic linear expansion ``expand``."""
    a = atoms.copy()
    a.calc = None
    eps = rng.uniform(-strain, strain, size=(3, 3))
    eps = 0.5 * (eps + eps.T) + expand * np.eye(3)
    a.set_cell(a.cell.array @ (np.eye(3) + eps), scale_atoms=True)
    a.positions += rng.normal(0.0, rattle, size=a.positions.shape)
    return a


def pymatgen_structures(skipped: list[str]) -> dict[str, Atoms]:
    """The 21 Materials Project structures bundled with pymatgen (``pymatgen/util/structures``);
    disordered ones (partial occupancies) cannot be evaluated and are listed in ``skipped``."""
    import pymatgen.core as pmg
    from pymatgen.io.ase import AseAtomsAdaptor

    folder = Path(pmg.__file__).resolve().parents[1] / "util" / "structures"
    out = {}
    for f in sorted(folder.glob("*.json")):
        st = pmg.Structure.from_file(f)
        if not st.is_ordered:
            skipped.append(f"pmg:{f.stem}: disordered (partial occupancies)")
            continue
        out[f"pmg:{f.stem}"] = AseAtomsAdaptor.get_atoms(st)
    if not out:
        raise FileNotFoundError(f"no bundled pymatgen structures in {folder}")
    return out


def training_prototypes() -> dict[str, Atoms]:
    """Training-only structures, distinct from every evaluation material: the 71 elemental
    crystals of ASE's dcdft collection (Lejaeghere et al., Science 351, aad3000, 2016) and a few
    binary prototypes near their experimental lattice constants."""
    from ase.collections import dcdft

    out = {f"dcdft:{n}": dcdft[n] for n in dcdft.names}
    protos = [
        ("NaCl", "rocksalt", dict(a=5.64)),
        ("MgO", "rocksalt", dict(a=4.21)),
        ("LiF", "rocksalt", dict(a=4.03)),
        ("KBr", "rocksalt", dict(a=6.60)),
        ("GaAs", "zincblende", dict(a=5.65)),
        ("SiC", "zincblende", dict(a=4.36)),
        ("ZnS", "zincblende", dict(a=5.41)),
        ("ZnO", "wurtzite", dict(a=3.25, c=5.21)),
        ("GaN", "wurtzite", dict(a=3.19, c=5.19)),
        ("CaF2", "fluorite", dict(a=5.46)),
        ("NiAl", "cesiumchloride", dict(a=2.88)),
        ("CuZn", "cesiumchloride", dict(a=2.95)),
    ]
    for name, kind, kw in protos:
        out[f"proto:{name}"] = bulk(name, kind, **kw)
    return out


def mptrj_materials(path: Path) -> dict[str, list[Atoms]]:
    """Frames of an MPTrj-format JSON ``{mp_id: {frame_id: {"structure": ...}}}``."""
    from pymatgen.core import Structure
    from pymatgen.io.ase import AseAtomsAdaptor

    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt") as fh:
        raw = json.load(fh)
    out = {}
    for mp_id, frames in raw.items():
        if not isinstance(frames, dict):
            raise ValueError(f"{path}: material {mp_id!r} is not a dict of frames")
        atoms = []
        for fid, fr in frames.items():
            if "structure" not in fr:
                raise ValueError(f"{path}: material {mp_id}, frame {fid}: no 'structure' key")
            atoms.append(AseAtomsAdaptor.get_atoms(Structure.from_dict(fr["structure"])))
        out[mp_id] = atoms
    return out


def read_any(path: Path) -> list[Atoms]:
    """Held-out structures from extxyz/traj (ASE) or MPTrj-format JSON (optionally .gz)."""
    if path.name.endswith((".json", ".json.gz")):
        return [a for frames in mptrj_materials(path).values() for a in frames]
    from ase.io import read

    return list(read(path, index=":"))


def distill_test_split(root: Path) -> list[Atoms]:
    """Frames of the test materials of the distillation dataset (``splits.json`` + MPTrj JSON)."""
    split = json.loads((root / "splits.json").read_text())
    if "test" not in split:
        raise KeyError(f"{root / 'splits.json'}: no 'test' split")
    files = sorted(root.glob("*.json.gz")) + sorted(
        p
        for p in root.glob("*.json")
        if p.name not in ("splits.json", "manifest.json", "stats.json")
    )
    if not files:
        raise FileNotFoundError(f"{root}: no MPTrj-format data file")
    mats = {}
    for f in files:
        mats.update(mptrj_materials(f))
    missing = [m for m in split["test"] if m not in mats]
    if missing:
        raise KeyError(f"{root}: test materials {missing} not in {[f.name for f in files]}")
    return [a for m in split["test"] for a in mats[m]]


def _is_test(key: str) -> bool:
    return int(hashlib.sha256(key.encode()).hexdigest(), 16) % 2 == 1


def _split_mptrj(path: Path, usable, train: dict, ev: dict) -> dict:
    """Add the MPTrj sample's materials: those derived from the pymatgen structures (our
    evaluation materials; else half by hash) to ``ev``, a few frames of the others to
    ``train``. Returns the summary entry."""
    mats = mptrj_materials(path)
    # The bundled sample records where each material came from; those derived from the
    # pymatgen structures (our evaluation materials) are held out, the rest train.
    manifest = path.parent / "manifest.json"
    origin = {}
    if manifest.exists():
        origin = {m["mp_id"]: m["name"] for m in json.loads(manifest.read_text())["materials"]}
    n_tr = n_te = 0
    for mp_id, frames in sorted(mats.items()):
        frames = [f for f in frames if usable(f"{path.name}:{mp_id}", f)]
        test = origin[mp_id].startswith("pymatgen:") if mp_id in origin else _is_test(mp_id)
        if test:
            ev["atoms"] += frames
            ev["src"] += ["MPTrj sample (test materials)"] * len(frames)
            n_te += len(frames)
        else:
            # A few frames per material: the fine-tune's CPU budget is small.
            frames = frames[:: max(1, len(frames) // 4)][:4]
            train["base"] += frames
            train["configs"] += frames
            train["src"] += [f"mptrj:{mp_id}"] * len(frames)
            n_tr += len(frames)
    return {
        "path": str(path.relative_to(path.parents[2])),
        "train_frames": n_tr,
        "test_frames": n_te,
    }


def _extra_eval(eval_data, usable, ev: dict) -> None:
    """Add the held-out files (``--eval-data``; default the distillation set's test split)."""
    by_source: dict[str, list[Atoms]] = {}
    if eval_data is None:
        root = Path("data/distill")  # the repository's, run from its root (docs/trimming.md)
        if (root / "splits.json").exists():
            by_source["distillation test split"] = distill_test_split(root)
        eval_data = []
    for p in eval_data:
        by_source[p.name] = read_any(p)
    for name, frames in by_source.items():
        frames = [a for i, a in enumerate(frames) if usable(f"{name}[{i}]", a)]
        ev["atoms"] += frames
        ev["src"] += [name] * len(frames)


def _cap_per_source(ev: dict, max_eval: int, rng) -> dict:
    """Keep at most ``max_eval`` structures of each source (drawn with ``rng``), so that no
    source crowds out another; returns what was subsampled."""
    keep, sub = [], {}
    for s_name in dict.fromkeys(ev["src"]):
        idx = [i for i, s in enumerate(ev["src"]) if s == s_name]
        if len(idx) > max_eval:
            sub[s_name] = f"{max_eval} of {len(idx)}"
            idx = sorted(rng.choice(idx, max_eval, replace=False).tolist())
        keep += idx
    ev["atoms"] = [ev["atoms"][i] for i in keep]
    ev["src"] = [ev["src"][i] for i in keep]
    return sub


def _relax_set(pmg: dict, usable, skipped: list, rng, n_relax: int) -> list:
    """The ``n_relax`` smallest pymatgen structures (no noble-gas solid), rattled, strained
    and expanded: the relaxation starts."""
    noble = {2, 10, 18, 36, 54, 86}
    for n, a in pmg.items():
        if set(a.numbers.tolist()) <= noble:
            # A noble-gas solid's volume sits in a very flat van der Waals minimum that
            # SevenNet-0 barely resolves: 1 meV/atom moves it by tens of per cent.
            skipped.append(f"{n}: not relaxed (noble-gas solid, ill-defined volume)")
    small = sorted(
        (len(a), n)
        for n, a in pmg.items()
        if len(a) <= 24 and usable(n, a) and not set(a.numbers.tolist()) <= noble
    )
    return [
        (n, _perturbed(pmg[n], rng, rattle=0.05, strain=0.01, expand=0.02))
        for _, n in small[:n_relax]
    ]


def build_structure_sets(args, cutoff: float, type_map) -> dict:
    """Training, evaluation and relaxation sets; materials never appear in both training and
    evaluation. Everything skipped is counted, with the reason, in ``summary``."""
    rng = np.random.default_rng(args.seed)
    known = set(int(z) for z in type_map)
    skipped = []

    def usable(name, a):
        bad = sorted(set(a.numbers.tolist()) - known)
        if bad:
            skipped.append(f"{name}: elements {bad} unknown to SevenNet-0")
        return not bad

    train = {"base": [], "configs": [], "src": []}
    for name, a in training_prototypes().items():
        if usable(name, a):
            train["base"].append(a)
            for _ in range(2):
                train["configs"].append(_perturbed(a, rng, rattle=0.05, strain=0.02))
                train["src"].append(name)
    ev = {"atoms": [], "src": []}
    pmg = pymatgen_structures(skipped)
    for name, a in pmg.items():
        if usable(name, a):
            for _ in range(2):
                ev["atoms"].append(_perturbed(a, rng, rattle=0.04, strain=0.015))
                ev["src"].append("pymatgen (rattled, strained)")
    summary = {"skipped": skipped}
    if args.mptrj.exists():
        summary["mptrj_sample"] = _split_mptrj(args.mptrj, usable, train, ev)
    else:
        summary["mptrj_sample"] = f"not found ({args.mptrj.name}); not used"
    _extra_eval(args.eval_data, usable, ev)
    if sub := _cap_per_source(ev, args.max_eval, rng):
        summary["eval_subsampled"] = sub
    relax = _relax_set(pmg, usable, skipped, rng, args.n_relax)
    summary.update(
        train_configs=len(train["configs"]),
        train_materials=len(train["base"]),
        eval_configs=len(ev["atoms"]),
        eval_sources={s: ev["src"].count(s) for s in dict.fromkeys(ev["src"])},
        relax=[n for n, _ in relax],
    )
    return {
        "train_base": train["base"],
        "train": train["configs"],
        "train_source": train["src"],
        "eval": ev["atoms"],
        "eval_source": ev["src"],
        "relax": relax,
        "summary": summary,
    }


def neighbour_distances(structures, cutoff: float) -> np.ndarray:
    """All neighbour distances below ``cutoff`` (A), each pair counted once per direction."""
    from ase.neighborlist import neighbor_list

    return np.concatenate([neighbor_list("d", a, cutoff) for a in structures])


def min_distance(atoms: Atoms, cutoff: float) -> float:
    """Shortest neighbour distance (A) below ``cutoff`` (``inf`` for an isolated atom)."""
    from ase.neighborlist import neighbor_list

    d = neighbor_list("d", atoms, cutoff)
    return float(d.min()) if d.size else float("inf")


# ----------------------------------------------------------------------------- predictions
def to_graph(atoms: Atoms, cutoff: float):
    """SevenNet's input graph for one structure (same as SevenNetCalculator.calculate)."""
    from sevenn.atom_graph_data import AtomGraphData
    from sevenn.train.dataload import unlabeled_atoms_to_graph

    return AtomGraphData.from_numpy_dict(unlabeled_atoms_to_graph(atoms, cutoff))


def reference_tensors(model, structures):
    """Original model's (energy, forces, raw 6-stress) as constant torch tensors."""
    from sevenn._keys import PRED_FORCE, PRED_STRESS, PRED_TOTAL_ENERGY

    model.eval()
    out = []
    for a in structures:
        o = model(to_graph(a, model.cutoff))
        out.append(
            (
                o[PRED_TOTAL_ENERGY].detach().reshape(()),
                o[PRED_FORCE].detach(),
                o[PRED_STRESS].detach().reshape(-1),
            )
        )
    return out


def predict_all(calc, structures) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """(energy per atom eV, forces eV/A, Voigt stress eV/A^3) from an ASE calculator."""
    out = []
    for s in structures:
        a = s.copy()
        a.calc = calc
        out.append(
            (a.get_potential_energy() / len(a), a.get_forces().copy(), a.get_stress().copy())
        )
    return out


def _metrics(ref, new) -> dict:
    de = np.array([1e3 * abs(r[0] - n[0]) for r, n in zip(ref, new, strict=True)])
    df = np.concatenate([1e3 * np.abs(r[1] - n[1]).ravel() for r, n in zip(ref, new, strict=True)])
    ds = np.concatenate([EV_A3_TO_GPA * np.abs(r[2] - n[2]) for r, n in zip(ref, new, strict=True)])
    f_ref = np.concatenate([1e3 * np.abs(r[1]).ravel() for r in ref])
    return {
        "n_structures": len(ref),
        "energy_mae_meV_atom": float(de.mean()),
        "energy_max_meV_atom": float(de.max()),
        "force_mae_meV_A": float(df.mean()),
        "force_rmse_meV_A": float(np.sqrt((df**2).mean())),
        "force_max_meV_A": float(df.max()),
        "force_ref_mean_abs_meV_A": float(f_ref.mean()),
        "stress_mae_GPa": float(ds.mean()),
        "stress_max_GPa": float(ds.max()),
    }


def compare(ref, new, sets) -> dict:
    """Errors of ``new`` against ``ref`` over the evaluation set and per source."""
    res = _metrics(ref, new)
    src = np.array(sets["eval_source"])
    res["per_source"] = {
        s: _metrics(
            [ref[i] for i in np.flatnonzero(src == s)], [new[i] for i in np.flatnonzero(src == s)]
        )
        for s in dict.fromkeys(sets["eval_source"])
    }
    return res


def relax_all(calc, named, fmax: float = 0.05, steps: int = 500) -> list[dict]:
    from ase.filters import FrechetCellFilter
    from ase.optimize import FIRE

    out = []
    for name, s in named:
        a = s.copy()
        a.calc = calc
        t0 = time.perf_counter()
        opt = FIRE(FrechetCellFilter(a), logfile=None)
        converged = bool(opt.run(fmax=fmax, steps=steps))
        out.append(
            {
                "name": name,
                "n_atoms": len(a),
                "energy_per_atom": a.get_potential_energy() / len(a),
                "volume_per_atom": a.get_volume() / len(a),
                "steps": int(opt.nsteps),
                "converged": converged,
                "seconds": time.perf_counter() - t0,
            }
        )
    return out


def compare_relax(orig, new) -> dict:
    de = [
        1e3 * (n["energy_per_atom"] - o["energy_per_atom"]) for o, n in zip(orig, new, strict=True)
    ]
    dv = [
        100 * (n["volume_per_atom"] / o["volume_per_atom"] - 1)
        for o, n in zip(orig, new, strict=True)
    ]
    return {
        "energy_mae_meV_atom": float(np.mean(np.abs(de))),
        "energy_max_meV_atom": float(np.max(np.abs(de))),
        "volume_mean_abs_pct": float(np.mean(np.abs(dv))),
        "volume_max_abs_pct": float(np.max(np.abs(dv))),
        "all_converged": all(n["converged"] for n in new),
        "per_structure": [
            {
                "name": o["name"],
                "dE_meV_atom": e,
                "dV_pct": v,
                "steps": n["steps"],
                "converged": n["converged"],
            }
            for o, n, e, v in zip(orig, new, de, dv, strict=True)
        ],
    }


def environment() -> dict:
    import ase
    import e3nn
    import sevenn
    import torch

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "sevenn": sevenn.__version__,
        "e3nn": e3nn.__version__,
        "numpy": np.__version__,
        "ase": ase.__version__,
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "date_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
