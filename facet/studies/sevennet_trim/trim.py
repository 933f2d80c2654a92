"""Trim SevenNet-0: replace each interaction layer's radial MLP by a linear map on its basis.

SevenNet-0 (Park et al., J. Chem. Theory Comput. 20, 4857, 2024; NequIP architecture of
Batzner et al., Nat. Commun. 13, 2453, 2022) computes the weights of every convolution from the
edge length with an MLP ``8 -> 64 -> 64 -> n`` (e3nn ``FullyConnectedNet``, bias-free) of the
envelope-weighted Bessel basis ``u(r) b(r)`` (8 Bessel functions with trainable frequencies,
XPLOR envelope switching from 1 at 4.5 A to 0 at the 5 A cutoff). Following the Facet paper
(Miklaucic et al., arXiv 2509.08418, 2025), each MLP is replaced by a bias-free linear map
``w(r) = (u(r) b(r)) @ W`` fitted by least squares, either to the radial functions on distances
the model sees (``--fit edge``, :func:`facet.nn.radial_fit.fit_linear_radial`) or to each
convolution's output on real graphs, layer by layer (``--fit output``, the default,
:mod:`.outfit`), then fine-tuned (only ``W``) to match the original model's energies, forces and
stresses (:mod:`.tune`).

Run in an environment with torch (CPU) and sevenn, from the repository root (see
docs/trimming.md)::

    OMP_NUM_THREADS=1 python -m facet.studies.sevennet_trim.trim --save ~/models/7net-0-trimmed.pt

It writes docs/benchmarks/sevennet_trim/{report.md, results.json, layer_fits.png}. Weights are
never written inside a git work tree. Load a saved model with :func:`load_trimmed_calculator`.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np

from facet.nn import radial_fit  # NumPy only: facet.nn's package imports nothing eagerly

from . import evaluate as ev
from . import outfit, report, tune
from .radial import (
    convolution_keys,
    count_parameters,
    linear_radial,
    mlp_outputs,
    radial_features,
)


def inside_git_tree(path: Path) -> bool:
    """Whether ``path`` lies in a git work tree (a parent folder holds ``.git``)."""
    return any((p / ".git").exists() for p in Path(path).resolve().parents)


def radial_quality(model, maps: dict, r_fit: np.ndarray, r_test: np.ndarray) -> dict:
    """How well each map ``W`` reproduces its radial MLP on the fitting distances and on held-out
    distances from the evaluation structures (:func:`radial_fit.linear_map_quality`)."""
    F_fit, F_test = radial_features(model, r_fit), radial_features(model, r_test)
    reports = {}
    for key, W in maps.items():
        rep = radial_fit.linear_map_quality(F_fit, mlp_outputs(model, key, F_fit), W)
        test = radial_fit.linear_map_quality(F_test, mlp_outputs(model, key, F_test), W)
        d = rep.to_dict()
        d.pop("r2_per_output")
        d.pop("max_abs_error_per_output")
        d.update(
            r2_min_output=float(np.nanmin(rep.r2_per_output)),
            test_r2_mean=test.r2_mean,
            test_r2_overall=test.r2_overall,
            test_max_abs_error=test.max_abs_error,
            test_n_samples=int(len(r_test)),
            hidden=[int(m.weight.shape[1]) for m in model._modules[key].weight_nn.children()],
        )
        reports[key] = d
    return reports


def fit_layers(model, r_fit: np.ndarray, r_test: np.ndarray) -> tuple[dict, dict]:
    """Fit every radial MLP on the sampled distances (per-edge least squares); returns
    ``({key: W}, {key: report dict})`` (see :func:`radial_quality`)."""
    F_fit = radial_features(model, r_fit)
    maps = {
        key: radial_fit.fit_linear_radial(F_fit, mlp_outputs(model, key, F_fit))[0]
        for key in convolution_keys(model)
    }
    return maps, radial_quality(model, maps, r_fit, r_test)


def trimmed_copy(model, maps: dict):
    """A deep copy of ``model`` with each ``weight_nn`` replaced by a :func:`linear_radial`."""
    new = copy.deepcopy(model)
    for key, W in maps.items():
        new._modules[key].weight_nn = linear_radial(W)
    return new


def save_trimmed(model, path: Path, meta: dict) -> None:
    """Save the trimmed model's state and the replaced layer names (not inside the repo)."""
    path = Path(path).expanduser().resolve()
    if inside_git_tree(path):
        raise ValueError(f"refusing to write weights inside a git work tree: {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    import torch

    torch.save(
        {
            "format": "facet-sevennet-trim-v1",
            "base_model": "7net-0",
            "linear_layers": convolution_keys(model),
            "state_dict": model.state_dict(),
            "meta": meta,
        },
        path,
    )


def load_trimmed_calculator(path, device: str = "cpu"):
    """An ASE calculator (SevenNetCalculator) for a model saved by :func:`save_trimmed`."""
    import torch
    from sevenn.calculator import SevenNetCalculator

    blob = torch.load(Path(path).expanduser(), map_location=device, weights_only=False)
    if blob.get("format") != "facet-sevennet-trim-v1":
        raise ValueError(f"{path}: not a trimmed SevenNet file (format {blob.get('format')!r})")
    model = SevenNetCalculator(blob["base_model"], device=device).model
    for key in blob["linear_layers"]:
        w = blob["state_dict"][f"{key}.weight_nn.weight"]
        model._modules[key].weight_nn = linear_radial(w.cpu().numpy())
    own, saved = model.state_dict(), blob["state_dict"]
    # e3nn's generated TensorProduct code registers constant tensors lazily
    # ("..._compiled_main_left_right._tensor_constantN"); they are rebuilt, not loaded.
    extra = [k for k in saved if k not in own and "_tensor_constant" not in k]
    missing = [k for k in own if k not in saved]
    if extra or missing:
        raise ValueError(
            f"{path}: state does not match 7net-0 (unexpected {extra[:5]}, missing {missing[:5]})"
        )
    model.load_state_dict({k: v for k, v in saved.items() if k in own}, strict=True)
    return SevenNetCalculator(model, file_type="model_instance", device=device)


def training_frames(args, model, cutoff, sets, log=print):
    """Fine-tune (and output-fit) structures with the original model's labels.

    The distillation dataset's train split (teacher SevenNet-0, so its labels are the original
    model's, checked by :func:`tune.teacher_labels`) when present, else the script's own training
    structures labelled by running the original model. Materials derived from the pymatgen
    structures are dropped: those are evaluation and relaxation materials here. Frames with a
    neighbour closer than ``--r-min`` are dropped too (the linear map extrapolates there).
    """
    info = {}
    root = args.distill
    if root is not None and (root / "splits.json").exists():
        frames = tune.distill_frames(root, "train")
        names = {}
        if (root / "manifest.json").exists():
            man = json.loads((root / "manifest.json").read_text())
            names = {m["mp_id"]: m["name"] for m in man["materials"]}
        held = sorted(
            {r["mp_id"] for _, r in frames if names.get(r["mp_id"], "").startswith("pymatgen:")}
        )
        frames = [(a, r) for a, r in frames if r["mp_id"] not in held]
        labels = tune.teacher_labels(frames, model)
        structures = [a for a, _ in frames]
        info["source"] = f"{root.name} train split"
        info["excluded_materials_pymatgen_origin"] = [names[m] for m in held]
    else:
        structures = list(sets["train"])
        labels = ev.reference_tensors(model, structures)
        info["source"] = "prototypes + MPTrj sample (labelled by the original model)"
    keep = [ev.min_distance(a, cutoff) >= args.r_min for a in structures]
    info.update(frames_total=len(structures), frames_below_r_min=int(len(keep) - sum(keep)))
    structures = [a for a, k in zip(structures, keep, strict=True) if k]
    labels = [x for x, k in zip(labels, keep, strict=True) if k]
    info["frames_used"] = len(structures)
    log(f"training frames: {info}")
    return structures, labels, info


def build_parser() -> argparse.ArgumentParser:
    """The study's command line (``--help`` lists the options)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--save",
        type=Path,
        default=None,
        help="where to save the trimmed (fine-tuned) model; outside the repository",
    )
    ap.add_argument("--out-dir", type=Path, default=Path("docs/benchmarks/sevennet_trim"))
    ap.add_argument(
        "--mptrj",
        type=Path,
        default=Path("data/sample/mptrj_sample.json"),
        help="MPTrj-format JSON sample; materials split half train, half test",
    )
    ap.add_argument(
        "--distill",
        type=Path,
        default=Path("data/distill"),
        help="distillation dataset (teacher SevenNet-0): its train split is the fine-tune and "
        "output-fit data, its test split part of the evaluation",
    )
    ap.add_argument(
        "--eval-data",
        type=Path,
        nargs="*",
        default=None,
        help="held-out structures (extxyz/traj/MPTrj JSON[.gz]) used instead of the default, "
        "the test split of data/distill (its splits.json) when present",
    )
    ap.add_argument(
        "--fit",
        choices=("output", "edge"),
        default="output",
        help="output: least squares on each convolution's output on real graphs, layer by "
        "layer (facet.studies.sevennet_trim.outfit); edge: on the radial functions themselves",
    )
    ap.add_argument("--n-fit-structures", type=int, default=150, help="graphs for --fit output")
    ap.add_argument(
        "--edge-weight",
        type=float,
        default=0.05,
        help="--fit output: share of the per-edge radial fit added as a regulariser",
    )
    ap.add_argument("--n-fit", type=int, default=16384, help="distances sampled per fit")
    ap.add_argument("--uniform-fraction", type=float, default=0.25)
    ap.add_argument(
        "--r-min",
        type=float,
        default=1.0,
        help="shortest fitted distance in A; training structures with a shorter neighbour "
        "distance are left out of the fine-tune (the linear map would extrapolate there)",
    )
    ap.add_argument("--n-relax", type=int, default=14)
    ap.add_argument("--finetune-seconds", type=float, default=720.0)
    ap.add_argument("--lr", type=float, default=2e-3, help="peak Adam learning rate (cosine)")
    ap.add_argument("--batch", type=int, default=16, help="structures per fine-tune step")
    ap.add_argument("--stress-weight", type=float, default=1.0)
    ap.add_argument("--max-eval", type=int, default=40, help="held-out configs per source")
    ap.add_argument("--seed", type=int, default=0)
    return ap


def fit_radials(
    args, model, cutoff: float, sets: dict, train: list
) -> tuple[dict, dict, np.ndarray]:
    """Sample the fit distances and fit every layer's linear radial map (``--fit``); return the
    maps, the *fit* section of the results and the evaluation's neighbour distances."""
    rng = np.random.default_rng(args.seed + 1)
    fit_structs = [
        train[i]
        for i in rng.choice(len(train), min(args.n_fit_structures, len(train)), replace=False)
    ]

    r_train = ev.neighbour_distances(sets["train_base"] + fit_structs, cutoff)
    r_eval = ev.neighbour_distances(sets["eval"], cutoff)
    r_min = float(args.r_min)
    sets["summary"]["eval_distance_fraction_below_r_min"] = float(np.mean(r_eval < r_min))
    r_fit = radial_fit.mixture_distances(
        r_train,
        args.n_fit,
        r_min=r_min,
        r_max=cutoff,
        uniform_fraction=args.uniform_fraction,
        seed=args.seed,
    )
    r_test = rng.choice(r_eval, size=min(8192, r_eval.size), replace=False)
    t_fit = time.perf_counter()
    maps, fit_reports = fit_layers(model, r_fit, r_test)
    if args.fit == "output":
        maps, out_reports = outfit.fit_outputs(
            model, fit_structs, radial_features(model, r_fit), edge_weight=args.edge_weight
        )
        edge_only = copy.deepcopy(fit_reports)
        fit_reports = radial_quality(model, maps, r_fit, r_test)
        for k in maps:
            fit_reports[k].update(out_reports[k], edge_fit_r2_mean=edge_only[k]["r2_mean"])
    fit_seconds = time.perf_counter() - t_fit
    for k, rep in fit_reports.items():
        r2, r2t = 100 * rep["r2_mean"], 100 * rep["test_r2_mean"]
        print(f"  {k}: radial R2 mean {r2:.3f} %  held-out {r2t:.3f} %", flush=True)
    fit = {
        "method": args.fit,
        "seconds": fit_seconds,
        "n_fit_structures": len(fit_structs) if args.fit == "output" else 0,
        "edge_weight": args.edge_weight if args.fit == "output" else None,
        "n_fit": args.n_fit,
        "uniform_fraction": args.uniform_fraction,
        "r_min": r_min,
        "r_max": cutoff,
        "layers": fit_reports,
        "distance_quantiles_train": np.quantile(r_train, [0, 0.01, 0.5, 0.99, 1]).tolist(),
    }
    return maps, fit, r_eval


def evaluate_and_finetune(args, orig_calc, trim_calc, trimmed, maps, train, labels, sets):
    """Compare the trimmed model with the original (single points and relaxations), fine-tune
    its linear maps, compare again; return the comparisons, the original's relaxations and the
    fine-tune's history and steps."""
    print("evaluating original vs trimmed ...", flush=True)
    ref_eval = ev.predict_all(orig_calc, sets["eval"])
    res = {"trimmed": ev.compare(ref_eval, ev.predict_all(trim_calc, sets["eval"]), sets)}
    print("relaxing ...", flush=True)
    relax_orig = ev.relax_all(orig_calc, sets["relax"])
    res["trimmed"]["relax"] = ev.compare_relax(relax_orig, ev.relax_all(trim_calc, sets["relax"]))
    print(json.dumps({k: v for k, v in res["trimmed"].items() if k != "per_source"}, indent=1))

    print("fine-tuning ...", flush=True)
    history, steps = tune.finetune(
        trimmed,
        list(maps),
        train,
        labels,
        seconds=args.finetune_seconds,
        lr=args.lr,
        batch=args.batch,
        stress_weight=args.stress_weight,
        seed=args.seed,
    )
    res["finetuned"] = ev.compare(ref_eval, ev.predict_all(trim_calc, sets["eval"]), sets)
    res["finetuned"]["relax"] = ev.compare_relax(relax_orig, ev.relax_all(trim_calc, sets["relax"]))
    print(json.dumps({k: v for k, v in res["finetuned"].items() if k != "per_source"}, indent=1))
    return res, relax_orig, history, steps


def save_checked(path: Path, trimmed, trim_calc, atoms, meta: dict) -> str:
    """Save the trimmed model, reload it and check its energy of ``atoms`` against the in-memory
    model's; return the file name (no machine paths in the report)."""
    save_trimmed(trimmed, path, meta)
    check = load_trimmed_calculator(path)
    a = atoms.copy()
    a.calc = check
    e_loaded = a.get_potential_energy()
    a2 = atoms.copy()
    a2.calc = trim_calc
    if abs(e_loaded - a2.get_potential_energy()) > 1e-5 * max(1.0, abs(e_loaded)):
        raise RuntimeError("reloaded trimmed model disagrees with the in-memory one")
    return path.name


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)

    import torch

    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    from sevenn.calculator import SevenNetCalculator

    t_start = time.perf_counter()
    orig_calc = SevenNetCalculator("7net-0", device="cpu")
    model = orig_calc.model
    cutoff = float(orig_calc.cutoff)
    sets = ev.build_structure_sets(args, cutoff, type_map=orig_calc.type_map)
    print({k: len(v) for k, v in sets.items() if isinstance(v, list)}, flush=True)
    train, labels, train_info = training_frames(args, model, cutoff, sets)
    sets["summary"]["finetune"] = train_info
    maps, fit, r_eval = fit_radials(args, model, cutoff, sets, train)

    trimmed = trimmed_copy(model, maps)
    trim_calc = SevenNetCalculator(trimmed, file_type="model_instance", device="cpu")
    counts = {"original": count_parameters(model), "trimmed": count_parameters(trimmed)}
    res, relax_orig, history, steps = evaluate_and_finetune(
        args, orig_calc, trim_calc, trimmed, maps, train, labels, sets
    )

    saved = None
    if args.save is not None:
        meta = {"fit": fit["layers"], "finetune": history}
        saved = save_checked(args.save, trimmed, trim_calc, sets["eval"][0], meta)

    results = {
        "parameters": counts,
        "fit": fit,
        "datasets": sets["summary"],
        "results": res,
        "finetune": {
            "seconds": args.finetune_seconds,
            "lr": args.lr,
            "schedule": "cosine to 0 over the time budget",
            "fit_method": args.fit,
            "batch": args.batch,
            "stress_weight": args.stress_weight,
            "loss": "squares: (dE/N meV/atom)^2 + (dF meV/A)^2 + w (dsigma meV/A^3)^2",
            "history": history,
            "steps": steps,
            "n_steps": len(steps),
            "n_train_configs": len(train),
        },
        "relax_original": relax_orig,
        "saved_to": saved,
        "wall_seconds": time.perf_counter() - t_start,
        "environment": ev.environment(),
        "command": "OMP_NUM_THREADS=1 python -m facet.studies.sevennet_trim.trim "
        + " ".join(
            "<path>" if a.startswith(("/", "~")) else a
            for a in (argv if argv is not None else sys.argv[1:])
        ),
    }
    tuned = {k: trimmed._modules[k].weight_nn.weight.detach().double().numpy() for k in maps}
    report.write_report(
        results, model, maps, tuned, r_eval, radial_features, mlp_outputs, args.out_dir
    )
    print(f"report written to {args.out_dir}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
