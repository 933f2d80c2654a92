"""Basis study for the SevenNet-0 trim: how well can a linear map on K radial functions reproduce
each interaction layer's radial MLP, and what parameter cut does each K leave?

The trim (:mod:`.trim`) replaces every radial MLP ``8 -> 64 -> 64 -> n`` of SevenNet-0 (Park et
al., J. Chem. Theory Comput. 20, 4857, 2024) by a linear map on the model's own 8 envelope-weighted
Bessel functions (the linear radial map of the Facet paper, Miklaucic et al., arXiv 2509.08418,
2025). This script asks whether the accuracy left after that is a fitting problem or a capacity
limit of the basis: for each layer it fits, by least squares in float64, the best linear map from
several bases to all MLP outputs at once and reports the pooled relative RMS error
``sqrt(SS_res / SS_tot)``, R^2 and the same error of ``d(output)/dr`` (forces depend on it) on
held-out distances. Bases: SevenNet's own 8 features; Bessel functions ``sin(k pi r / r_c) / r``
(the DimeNet basis, Gasteiger et al., ICLR 2020) times SevenNet's envelope, K = 8..24; uniform
cubic B-splines (de Boor, A Practical Guide to Splines, 1978) times the envelope, K = 10..24.

Run in the trim environment (torch, sevenn; see docs/trimming.md) from the repository root,
about 2 min on one core::

    OMP_NUM_THREADS=1 python -m facet.studies.sevennet_trim.basis

It writes docs/benchmarks/sevennet_trim/basis_study.{json,md}. The pure functions (bases,
error measures, parameter arithmetic) need only NumPy; torch is imported in :func:`main`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from facet.nn import radial_fit

from . import basis_md as md
from . import evaluate as ev
from .radial import convolution_keys, count_parameters, mlp_outputs, radial_features
from .tune import KBAR_PER_EV_A3, distill_frames

# (family, K) pairs of the study; "sevennet" is the model's own trained 8-function basis.
FAMILIES = [("sevennet", 8)] + [("bessel", k) for k in (8, 10, 12, 16, 24)]
FAMILIES += [("bspline", k) for k in (10, 16, 24)]
GOAL_PARAM_CUT_PCT = 25.0  # issue 9


def bessel_basis(r, n_basis: int, cutoff: float) -> np.ndarray:
    """``sin(k pi r / r_c) / r`` for ``k = 1..n_basis`` (no prefactor: it cancels in least
    squares), shape ``(len(r), n_basis)``."""
    r = np.asarray(r, dtype=np.float64)[:, None]
    k = np.arange(1, n_basis + 1)[None, :]
    return np.sin(k * np.pi * r / cutoff) / r


def cubic_bspline_basis(r, n_basis: int, lo: float, hi: float) -> np.ndarray:
    """Uniform cubic B-splines, ``n_basis >= 4`` of them, knot spacing ``h = (hi - lo) /
    (n_basis - 3)``, centred at ``lo + (j - 1) h``; on ``[lo, hi]`` they sum to 1."""
    if n_basis < 4:
        raise ValueError(f"cubic_bspline_basis: need n_basis >= 4, got {n_basis}")
    h = (hi - lo) / (n_basis - 3)
    centres = lo + h * (np.arange(n_basis) - 1.0)
    u = np.abs(np.asarray(r, dtype=np.float64)[:, None] - centres[None, :]) / h
    inner = 2.0 / 3.0 - u**2 + 0.5 * u**3
    outer = (2.0 - u) ** 3 / 6.0
    return np.where(u < 1.0, inner, np.where(u < 2.0, outer, 0.0))


def fit_errors(Y, Yhat) -> dict:
    """Pooled and per-output errors of ``Yhat`` against ``Y`` (rows: samples, cols: outputs).

    ``rel_rms`` = sqrt(SS_res / SS_tot), both summed over all outputs (SS_tot about each
    output's mean); ``r2_pooled`` = 1 - rel_rms^2; ``r2_mean`` = mean over outputs of each
    output's R^2 (sklearn's uniform average; outputs with zero variance are skipped).
    """
    Y, Yhat = np.asarray(Y, dtype=np.float64), np.asarray(Yhat, dtype=np.float64)
    res = ((Y - Yhat) ** 2).sum(0)
    tot = ((Y - Y.mean(0)) ** 2).sum(0)
    rel = float(np.sqrt(res.sum() / tot.sum()))
    ok = tot > 0
    return {
        "rel_rms": rel,
        "r2_pooled": 1.0 - rel**2,
        "r2_mean": float(np.mean(1.0 - res[ok] / tot[ok])),
    }


def parameter_cut(
    mlp_params, n_out, trainable_total: int, n_basis: int, basis_params_removed: int = 0
) -> dict:
    """Trainable parameters removed when every MLP (``mlp_params[i]`` weights, ``n_out[i]``
    outputs) becomes an ``n_basis x n_out[i]`` map, plus ``basis_params_removed`` (the model's 8
    trainable Bessel frequencies when a fixed basis replaces them)."""
    removed = sum(mlp_params) - n_basis * sum(n_out) + basis_params_removed
    return {
        "removed": int(removed),
        "trimmed_trainable": int(trainable_total - removed),
        "reduction_pct": 100.0 * removed / trainable_total,
    }


def family_features(family: str, K: int, r, own, envelope, cutoff: float, lo: float):
    """Features of one basis family on distances ``r`` (``own``: SevenNet's own features)."""
    if family == "sevennet":
        return own
    if family == "bessel":
        return bessel_basis(r, K, cutoff) * envelope[:, None]
    if family == "bspline":
        return cubic_bspline_basis(r, K, lo, cutoff) * envelope[:, None]
    raise ValueError(f"unknown basis family {family!r}")


def label_check(model, path: Path, n_frames: int) -> dict:
    """SevenNet-0 on ``n_frames`` frames spread over an MPTrj-format file vs the file's labels."""
    from pymatgen.core import Structure
    from pymatgen.io.ase import AseAtomsAdaptor
    from sevenn._keys import PRED_FORCE, PRED_STRESS, PRED_TOTAL_ENERGY

    raw = json.loads(path.read_text())
    recs = [rec for frames in raw.values() for rec in frames.values()]
    idx = np.linspace(0, len(recs) - 1, n_frames).round().astype(int)
    dE, dF, dS, n_atoms = [], [], [], 0
    model.eval()
    for i in idx:
        rec = recs[i]
        atoms = AseAtomsAdaptor.get_atoms(Structure.from_dict(rec["structure"]))
        o = model(ev.to_graph(atoms, model.cutoff))
        dE.append(
            abs(float(o[PRED_TOTAL_ENERGY].detach()) - rec["uncorrected_total_energy"]) / len(atoms)
        )
        dF.append(np.abs(o[PRED_FORCE].detach().double().numpy() - np.asarray(rec["force"])))
        s = np.asarray(rec["stress"], dtype=np.float64) / KBAR_PER_EV_A3
        voigt = np.array([s[0, 0], s[1, 1], s[2, 2], s[0, 1], s[1, 2], s[2, 0]])
        dS.append(np.abs(o[PRED_STRESS].detach().double().numpy().ravel() - voigt))
        n_atoms += len(atoms)
    dF = np.concatenate([d.ravel() for d in dF])
    return {
        "file": os.path.relpath(path),
        "frames_in_file": len(recs),
        "frames_checked": int(len(idx)),
        "atoms_checked": int(n_atoms),
        "energy_mae_meV_atom": 1e3 * float(np.mean(dE)),
        "force_mae_meV_A": 1e3 * float(dF.mean()),
        "force_max_meV_A": 1e3 * float(dF.max()),
        "stress_max_meV_A3": 1e3 * float(np.concatenate(dS).max()),
    }


def distance_sets(args, model, cutoff: float, type_map) -> tuple[dict, dict]:
    """Fitting and held-out distances, by the recipe of :mod:`.trim`: fit on a
    mixture of neighbour distances of its training structures (prototypes, MPTrj-sample train
    materials and 150 distillation-train frames) and a uniform share on [r_min, r_c]; held out:
    neighbour distances of its evaluation structures (other materials) and, separately,
    uniform distances on [r_min, r_c] drawn with another seed."""
    ns = argparse.Namespace(
        seed=args.seed, mptrj=args.mptrj, max_eval=40, n_relax=14, eval_data=None
    )
    sets = ev.build_structure_sets(ns, cutoff, type_map=type_map)
    train = []
    root = Path("data/distill")
    if (root / "splits.json").exists():
        man = json.loads((root / "manifest.json").read_text())
        names = {m["mp_id"]: m["name"] for m in man["materials"]}
        train = [
            a
            for a, rec in distill_frames(root, "train")
            if not names.get(rec["mp_id"], "").startswith("pymatgen:")
        ]
    rng = np.random.default_rng(args.seed + 1)
    pick = rng.choice(len(train), min(150, len(train)), replace=False) if train else []
    fit_structs = [train[i] for i in pick]
    r_train = ev.neighbour_distances(sets["train_base"] + fit_structs, cutoff)
    r_eval = ev.neighbour_distances(sets["eval"], cutoff)
    r_eval = r_eval[r_eval >= args.r_min]
    dists = {
        "fit": radial_fit.mixture_distances(
            r_train,
            args.n_fit,
            r_min=args.r_min,
            r_max=cutoff,
            uniform_fraction=0.25,
            seed=args.seed,
        ),
        "heldout": np.sort(rng.choice(r_eval, size=min(args.n_test, r_eval.size), replace=False)),
        "uniform": np.sort(
            np.random.default_rng(args.seed + 7).uniform(args.r_min, cutoff, args.n_test)
        ),
    }
    info = {
        "fit": f"{args.n_fit} distances: 75 % from {r_train.size} neighbour distances of "
        f"{len(sets['train_base'])} training structures + {len(fit_structs)} distillation-train "
        f"frames, 25 % uniform on [{args.r_min}, {cutoff}] A (the trim's recipe)",
        "heldout": f"{dists['heldout'].size} of the {r_eval.size} neighbour distances (>= "
        f"{args.r_min} A) of the {len(sets['eval'])} evaluation structures (materials not in "
        "the fitting set)",
        "uniform": f"{args.n_test} uniform on [{args.r_min}, {cutoff}] A (other seed)",
        "quantiles_heldout": np.quantile(dists["heldout"], [0, 0.01, 0.5, 0.99, 1]).tolist(),
    }
    return dists, info


def _shifted_features(model, dists: dict, h: float, keys) -> tuple[dict, dict]:
    """``(feats, targets)``: for every distance set and shift (0, and -h, +h for the
    derivative sets) the distances, SevenNet's own features and its envelope; and every
    layer's MLP outputs on them."""
    import torch

    emb = model._modules["edge_embedding"]

    def envelope(r):
        with torch.no_grad():
            return emb.cutoff_function(torch.as_tensor(r, dtype=torch.float64)).numpy()

    feats = {}  # (set, shift) -> (r, own features, envelope)
    for name, r in dists.items():
        shifts = (0,) if name == "fit" else (0, -1, 1)
        for s in shifts:
            rr = r + s * h
            feats[name, s] = (rr, radial_features(model, rr), envelope(rr))
    targets = {k: {ns: mlp_outputs(model, k, f[1]) for ns, f in feats.items()} for k in keys}
    return feats, targets


def _layer_errors(G: dict, T: dict, h: float) -> dict:
    """Errors of the least-squares map from basis ``G`` to outputs ``T`` fitted on the fitting
    distances: on them, and on the held-out sets (values and central-difference derivatives)."""
    W = np.linalg.lstsq(G["fit", 0], T["fit", 0], rcond=None)[0]
    row = {"fit": fit_errors(T["fit", 0], G["fit", 0] @ W)}
    for name in ("heldout", "uniform"):
        row[name] = fit_errors(T[name, 0], G[name, 0] @ W)
        dY = (T[name, 1] - T[name, -1]) / (2 * h)
        dG = (G[name, 1] - G[name, -1]) / (2 * h)
        row[name + "_deriv"] = fit_errors(dY, dG @ W)
    return row


def _trim_reference(out_dir: Path) -> dict | None:
    """The trim run's force errors (its results.json in ``out_dir``), for scale."""
    if not (out_dir / "results.json").exists():
        return None
    res = json.loads((out_dir / "results.json").read_text())["results"]
    return {
        "force_mae_meV_A_lsq": res["trimmed"]["force_mae_meV_A"],
        "force_mae_meV_A_finetuned": res["finetuned"]["force_mae_meV_A"],
    }


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out-dir", type=Path, default=Path("docs/benchmarks/sevennet_trim"))
    ap.add_argument("--mptrj", type=Path, default=Path("data/sample/mptrj_sample.json"))
    ap.add_argument("--n-fit", type=int, default=16384)
    ap.add_argument("--n-test", type=int, default=8192)
    ap.add_argument("--r-min", type=float, default=1.0)
    ap.add_argument("--fd-step", type=float, default=1e-4, help="central-difference step, A")
    ap.add_argument("--n-label-frames", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    return ap


def main(argv=None) -> int:
    args = _parser().parse_args(argv)

    import torch
    from sevenn.calculator import SevenNetCalculator

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    calc = SevenNetCalculator("7net-0", device="cpu")
    model, cutoff = calc.model, float(calc.cutoff)
    keys = convolution_keys(model)
    mlp_params = [sum(p.numel() for p in model._modules[k].weight_nn.parameters()) for k in keys]
    n_out = [mlp_outputs(model, k, np.zeros((1, 8))).shape[1] for k in keys]
    n_own = radial_features(model, np.array([2.0])).shape[1]
    emb_params = model._modules["edge_embedding"].basis_function.parameters()
    basis_trainable = int(sum(p.numel() for p in emb_params if p.requires_grad))
    trainable = count_parameters(model)["trainable"]

    dists, dist_info = distance_sets(args, model, cutoff, calc.type_map)
    h = args.fd_step
    feats, targets = _shifted_features(model, dists, h, keys)

    results = []
    for family, K in FAMILIES:
        G = {
            ns: family_features(family, K, rr, own, env, cutoff, args.r_min)
            for ns, (rr, own, env) in feats.items()
        }
        layers = {k: _layer_errors(G, targets[k], h) for k in keys}
        removed_basis = 0 if family == "sevennet" else basis_trainable
        results.append(
            {
                "family": family,
                "K": K,
                "label": md.family_label(family, K),
                "layers": layers,
                "parameters": parameter_cut(mlp_params, n_out, trainable, K, removed_basis),
            }
        )
        rel = [round(v["heldout"]["rel_rms"], 3) for v in layers.values()]
        cut = results[-1]["parameters"]["reduction_pct"]
        print(md.family_label(family, K), rel, f"{cut:.2f} %", flush=True)

    labels = label_check(model, args.mptrj, args.n_label_frames) if args.mptrj.exists() else None
    trim_ref = _trim_reference(args.out_dir)
    study = {
        "cutoff": cutoff,
        "r_min": args.r_min,
        "fd_step": h,
        "n_own_features": n_own,
        "distances": dist_info,
        "model": {
            "trainable": trainable,
            "layers": keys,
            "mlp_params": mlp_params,
            "n_out": n_out,
            "basis_trainable": basis_trainable,
        },
        "goal_param_cut_pct": GOAL_PARAM_CUT_PCT,
        "results": results,
        "label_check": labels,
        "trim_reference": trim_ref,
        "environment": ev.environment(),
        "wall_seconds": time.perf_counter() - t0,
        "command": (
            "OMP_NUM_THREADS=1 python -m facet.studies.sevennet_trim.basis "
            + " ".join(
                "<path>" if a.startswith(("/", "~")) else a
                for a in (argv if argv is not None else sys.argv[1:])
            )
        ).strip(),
    }
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "basis_study.json").write_text(json.dumps(study, indent=1) + "\n")
    (args.out_dir / "basis_study.md").write_text(md.markdown(study))
    print(f"written to {args.out_dir} in {study['wall_seconds']:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
