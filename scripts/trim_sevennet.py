"""Trim SevenNet-0: replace each interaction layer's radial MLP by a linear map on its basis.

SevenNet-0 (Park et al., J. Chem. Theory Comput. 20, 4857, 2024; NequIP architecture of
Batzner et al., Nat. Commun. 13, 2453, 2022) computes the weights of every convolution from the
edge length with an MLP ``8 -> 64 -> 64 -> n`` (e3nn ``FullyConnectedNet``, bias-free) of the
envelope-weighted Bessel basis ``u(r) b(r)`` (8 Bessel functions with trainable frequencies,
XPLOR envelope switching from 1 at 4.5 A to 0 at the 5 A cutoff). Following the Facet paper
(Miklaucic et al., arXiv 2509.08418, 2025), each MLP is replaced by a bias-free linear map
``w(r) = (u(r) b(r)) @ W`` fitted by least squares (:func:`facet.nn.radial_fit.fit_linear_radial`)
on distances the model sees, then optionally fine-tuned (only ``W``) to match the original
model's energies, forces and stresses.

Run in an environment with torch (CPU) and sevenn (see docs/trimming.md)::

    OMP_NUM_THREADS=1 python scripts/trim_sevennet.py --save ~/models/7net-0-trimmed.pt

It writes docs/benchmarks/sevennet_trim/{report.md, results.json, layer_fits.png}. Weights are
never written inside the repository. Load a saved model with :func:`load_trimmed_calculator`.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

import trim_sevennet_eval as ev  # noqa: E402  (sibling script modules)
import trim_sevennet_report as report  # noqa: E402


def _load_radial_fit():
    """Import facet/nn/radial_fit.py by path: it is NumPy-only, so this works whatever
    facet.nn's ``__init__`` imports (JAX is not needed by this script)."""
    spec = importlib.util.spec_from_file_location(
        "facet_radial_fit", REPO / "facet" / "nn" / "radial_fit.py"
    )
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


radial_fit = _load_radial_fit()


class LinearRadial(torch.nn.Module):
    """Bias-free linear radial map ``w = x @ W`` replacing a ``FullyConnectedNet`` weight_nn.

    ``x`` is SevenNet's edge embedding (envelope-weighted Bessel basis, shape ``(n_edge, 8)``);
    ``W`` has shape ``(n_basis, n_weights)``. No bias, so ``w`` vanishes at the cutoff with the
    envelope, like the MLP it replaces (its activation satisfies f(0) = 0 and it has no biases).
    """

    def __init__(self, weight) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.as_tensor(np.asarray(weight), dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight


def convolution_keys(model) -> list[str]:
    """Names of the modules that own a radial MLP (``weight_nn``), in model order."""
    keys = [k for k, m in model._modules.items() if getattr(m, "weight_nn", None) is not None]
    if not keys:
        raise RuntimeError("no module with a weight_nn found: is this a SevenNet model?")
    return keys


def radial_features(model, r: np.ndarray) -> np.ndarray:
    """SevenNet's edge embedding ``b(r) * u(r)`` in float64, using the model's own modules (its
    trained Bessel frequencies and its envelope), shape ``(len(r), n_basis)``."""
    emb = copy.deepcopy(model._modules["edge_embedding"]).double()
    with torch.no_grad():
        rt = torch.as_tensor(r, dtype=torch.float64)
        return (emb.basis_function(rt) * emb.cutoff_function(rt).unsqueeze(-1)).numpy()


def mlp_outputs(model, key: str, features: np.ndarray) -> np.ndarray:
    """The layer's radial MLP evaluated in float64 on the given features."""
    net = copy.deepcopy(model._modules[key].weight_nn).double()
    with torch.no_grad():
        return net(torch.as_tensor(features, dtype=torch.float64)).numpy()


def count_parameters(model) -> dict:
    """Trainable (``requires_grad`` at load) and all parameters of a model."""
    params = list(model.parameters())
    return {
        "trainable": int(sum(p.numel() for p in params if p.requires_grad)),
        "all": int(sum(p.numel() for p in params)),
    }


def fit_layers(model, r_fit: np.ndarray, r_test: np.ndarray) -> tuple[dict, dict]:
    """Fit every radial MLP; returns ``({key: W}, {key: report dict})``. Quality is reported on
    the fitting distances and on held-out distances from the evaluation structures."""
    F_fit, F_test = radial_features(model, r_fit), radial_features(model, r_test)
    maps, reports = {}, {}
    for key in convolution_keys(model):
        Y = mlp_outputs(model, key, F_fit)
        W, rep = radial_fit.fit_linear_radial(F_fit, Y)
        Y_test = mlp_outputs(model, key, F_test)
        resid = F_test @ W - Y_test
        ss_tot = ((Y_test - Y_test.mean(0)) ** 2).sum(0)
        live = ss_tot > 0
        r2_test = 1 - (resid**2).sum(0)[live] / ss_tot[live]
        maps[key] = W
        d = rep.to_dict()
        d.pop("r2_per_output")
        d.pop("max_abs_error_per_output")
        d.update(
            r2_min_output=float(np.nanmin(rep.r2_per_output)),
            test_r2_mean=float(r2_test.mean()),
            test_r2_overall=float(1 - (resid**2).sum() / ss_tot[live].sum()),
            test_max_abs_error=float(np.abs(resid).max()),
            test_n_samples=int(len(r_test)),
            hidden=[int(m.weight.shape[1]) for m in model._modules[key].weight_nn.children()],
        )
        reports[key] = d
    return maps, reports


def trimmed_copy(model, maps: dict):
    """A deep copy of ``model`` with each ``weight_nn`` replaced by a :class:`LinearRadial`."""
    new = copy.deepcopy(model)
    for key, W in maps.items():
        new._modules[key].weight_nn = LinearRadial(W)
    return new


def save_trimmed(model, path: Path, meta: dict) -> None:
    """Save the trimmed model's state and the replaced layer names (not inside the repo)."""
    path = Path(path).expanduser().resolve()
    if REPO in path.parents:
        raise ValueError(f"refusing to write weights inside the repository: {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
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
    from sevenn.calculator import SevenNetCalculator

    blob = torch.load(Path(path).expanduser(), map_location=device, weights_only=False)
    if blob.get("format") != "facet-sevennet-trim-v1":
        raise ValueError(f"{path}: not a trimmed SevenNet file (format {blob.get('format')!r})")
    model = SevenNetCalculator(blob["base_model"], device=device).model
    for key in blob["linear_layers"]:
        w = blob["state_dict"][f"{key}.weight_nn.weight"]
        model._modules[key].weight_nn = LinearRadial(w.cpu().numpy())
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


def finetune(
    model,
    maps_keys,
    train_set,
    ref,
    *,
    seconds: float,
    lr: float,
    batch: int,
    delta: float,
    seed=0,
):
    """Adam on the linear maps only, matching the *original* SevenNet-0's predictions ``ref``.

    Loss per structure: ``H(dE) + mean H(dF) + mean H(dsigma)`` with ``H`` the Huber function
    (quadratic below ``delta``, linear above) and dE in meV/atom, dF in meV/A, dsigma in
    meV/A^3. Huber rather than squares, because after the least-squares conversion a few
    training structures have force errors far above the rest (on a 40-structure subset: force
    RMSE 486 vs MAE 108 meV/A) and would otherwise dominate every step. Stops after
    ``seconds`` (checked between mini-batches). Returns ``(per-epoch rows, per-step (seconds,
    loss))``.
    """
    from sevenn._keys import PRED_FORCE, PRED_STRESS, PRED_TOTAL_ENERGY

    for p in model.parameters():
        p.requires_grad_(False)
    params = [model._modules[k].weight_nn.weight for k in maps_keys]
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=lr)

    def huber(x):
        return torch.nn.functional.huber_loss(x, torch.zeros_like(x), delta=delta)

    rng = np.random.default_rng(seed)
    history, steps, t0, epoch = [], [], time.perf_counter(), 0
    model.train()
    while time.perf_counter() - t0 < seconds:
        order = rng.permutation(len(train_set))
        losses = []
        for start in range(0, len(order), batch):
            if time.perf_counter() - t0 >= seconds:
                break
            opt.zero_grad()
            for i in order[start : start + batch]:
                atoms = train_set[i]
                out = model(ev.to_graph(atoms, model.cutoff))
                n = len(atoms)
                e, f, s = ref[i]
                de = 1e3 * (out[PRED_TOTAL_ENERGY].reshape(()) - e) / n
                df = 1e3 * (out[PRED_FORCE] - f)
                ds = 1e3 * (out[PRED_STRESS].reshape(-1) - s)
                n_b = len(order[start : start + batch])
                loss = (huber(de.reshape(1)) + huber(df) + huber(ds)) / n_b
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"fine-tune loss is {float(loss)} on config {i}")
                loss.backward()
                losses.append(float(loss.detach()) * n_b)
            opt.step()
            steps.append((time.perf_counter() - t0, float(np.mean(losses[-n_b:]))))
        epoch += 1
        history.append(
            {
                "epoch": epoch,
                "seconds": time.perf_counter() - t0,
                "mean_loss": float(np.mean(losses)) if losses else float("nan"),
                "structures": len(losses),
            }
        )
        print(
            f"  fine-tune epoch {epoch}: loss {history[-1]['mean_loss']:.3f} "
            f"({history[-1]['seconds']:.0f} s)",
            flush=True,
        )
    model.eval()
    for p in params:
        p.requires_grad_(False)
    return history, steps


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--save",
        type=Path,
        default=None,
        help="where to save the trimmed (fine-tuned) model; outside the repository",
    )
    ap.add_argument("--out-dir", type=Path, default=REPO / "docs/benchmarks/sevennet_trim")
    ap.add_argument(
        "--mptrj",
        type=Path,
        default=REPO / "data/sample/mptrj_sample.json",
        help="MPTrj-format JSON sample; materials split half train, half test",
    )
    ap.add_argument(
        "--eval-data",
        type=Path,
        nargs="*",
        default=None,
        help="held-out structures (extxyz/traj/MPTrj JSON[.gz]) used instead of the default, "
        "the test split of data/distill (its splits.json) when present",
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
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--huber-delta", type=float, default=10.0, help="Huber threshold, meV units")
    ap.add_argument("--max-eval", type=int, default=40, help="held-out configs per source")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    from sevenn.calculator import SevenNetCalculator

    t_start = time.perf_counter()
    orig_calc = SevenNetCalculator("7net-0", device="cpu")
    model = orig_calc.model
    cutoff = float(orig_calc.cutoff)
    sets = ev.build_structure_sets(args, cutoff, type_map=orig_calc.type_map)
    print({k: len(v) for k, v in sets.items() if isinstance(v, list)}, flush=True)

    r_train = ev.neighbour_distances(sets["train_base"], cutoff)
    r_eval = ev.neighbour_distances(sets["eval"], cutoff)
    r_min = float(args.r_min)
    keep = [ev.min_distance(a, cutoff) >= r_min for a in sets["train"]]
    sets["summary"]["finetune_excluded_below_r_min"] = sorted(
        {src for src, k in zip(sets["train_source"], keep, strict=True) if not k}
    )
    sets["train"] = [a for a, k in zip(sets["train"], keep, strict=True) if k]
    sets["summary"]["eval_distance_fraction_below_r_min"] = float(np.mean(r_eval < r_min))
    r_fit = radial_fit.mixture_distances(
        r_train,
        args.n_fit,
        r_min=r_min,
        r_max=cutoff,
        uniform_fraction=args.uniform_fraction,
        seed=args.seed,
    )
    rng = np.random.default_rng(args.seed + 1)
    r_test = rng.choice(r_eval, size=min(8192, r_eval.size), replace=False)
    maps, fit_reports = fit_layers(model, r_fit, r_test)
    for k, rep in fit_reports.items():
        r2, r2t = 100 * rep["r2_mean"], 100 * rep["test_r2_mean"]
        print(f"  {k}: R2 mean {r2:.3f} %  held-out {r2t:.3f} %", flush=True)

    trimmed = trimmed_copy(model, maps)
    trim_calc = SevenNetCalculator(trimmed, file_type="model_instance", device="cpu")
    counts = {"original": count_parameters(model), "trimmed": count_parameters(trimmed)}

    print("evaluating original vs trimmed ...", flush=True)
    ref_eval = ev.predict_all(orig_calc, sets["eval"])
    res = {"trimmed": ev.compare(ref_eval, ev.predict_all(trim_calc, sets["eval"]), sets)}
    print("relaxing ...", flush=True)
    relax_orig = ev.relax_all(orig_calc, sets["relax"])
    res["trimmed"]["relax"] = ev.compare_relax(relax_orig, ev.relax_all(trim_calc, sets["relax"]))
    print(json.dumps({k: v for k, v in res["trimmed"].items() if k != "per_source"}, indent=1))

    print("fine-tuning ...", flush=True)
    ref_train = ev.reference_tensors(model, sets["train"])
    history, steps = finetune(
        trimmed,
        list(maps),
        sets["train"],
        ref_train,
        seconds=args.finetune_seconds,
        lr=args.lr,
        batch=args.batch,
        delta=args.huber_delta,
        seed=args.seed,
    )
    res["finetuned"] = ev.compare(ref_eval, ev.predict_all(trim_calc, sets["eval"]), sets)
    res["finetuned"]["relax"] = ev.compare_relax(relax_orig, ev.relax_all(trim_calc, sets["relax"]))
    print(json.dumps({k: v for k, v in res["finetuned"].items() if k != "per_source"}, indent=1))

    saved = None
    if args.save is not None:
        save_trimmed(trimmed, args.save, {"fit": fit_reports, "finetune": history})
        check = load_trimmed_calculator(args.save)
        a = sets["eval"][0].copy()
        a.calc = check
        e_loaded = a.get_potential_energy()
        a2 = sets["eval"][0].copy()
        a2.calc = trim_calc
        if abs(e_loaded - a2.get_potential_energy()) > 1e-5 * max(1.0, abs(e_loaded)):
            raise RuntimeError("reloaded trimmed model disagrees with the in-memory one")
        saved = args.save.name  # only the file name: no machine paths in the report

    results = {
        "parameters": counts,
        "fit": {
            "n_fit": args.n_fit,
            "uniform_fraction": args.uniform_fraction,
            "r_min": r_min,
            "r_max": cutoff,
            "layers": fit_reports,
            "distance_quantiles_train": np.quantile(r_train, [0, 0.01, 0.5, 0.99, 1]).tolist(),
        },
        "datasets": sets["summary"],
        "results": res,
        "finetune": {
            "seconds": args.finetune_seconds,
            "lr": args.lr,
            "batch": args.batch,
            "huber_delta": args.huber_delta,
            "history": history,
            "steps": steps,
            "n_train_configs": len(sets["train"]),
        },
        "relax_original": relax_orig,
        "saved_to": saved,
        "wall_seconds": time.perf_counter() - t_start,
        "environment": ev.environment(),
        "command": "OMP_NUM_THREADS=1 python scripts/trim_sevennet.py "
        + " ".join(
            "<path>" if a.startswith(("/", "~")) else a
            for a in (argv if argv is not None else sys.argv[1:])
        ),
    }
    report.write_report(
        results, model, maps, r_fit, r_eval, radial_features, mlp_outputs, args.out_dir
    )
    print(f"report written to {args.out_dir}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
