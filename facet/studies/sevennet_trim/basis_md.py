"""Markdown for :mod:`.basis`: docs/benchmarks/sevennet_trim/basis_study.md, and the short
section that :mod:`.report` adds to report.md when the study exists.
NumPy/standard library only; every figure comes from the study's JSON."""

from __future__ import annotations

import json
from pathlib import Path

NAMES = {"sevennet": "SevenNet's own", "bessel": "Bessel x envelope", "bspline": "B-spline x env."}


def family_label(family: str, K: int) -> str:
    return f"{NAMES.get(family, family)} K={K}"


def worst(entry: dict, field: str) -> float:
    """Largest relative RMS error over the layers for one basis (``field``: e.g. ``heldout``)."""
    return max(v[field]["rel_rms"] for v in entry["layers"].values())


def max_k_meeting_goal(study: dict, family: str = "bessel") -> int | None:
    """Largest K of ``family`` whose parameter cut still meets the goal (None if none does)."""
    ok = [
        e["K"]
        for e in study["results"]
        if e["family"] == family and e["parameters"]["reduction_pct"] >= study["goal_param_cut_pct"]
    ]
    return max(ok) if ok else None


def find(study: dict, family: str, K: int) -> dict | None:
    return next((e for e in study["results"] if e["family"] == family and e["K"] == K), None)


def _rel_row(e: dict, field: str) -> str:
    cells = " | ".join(f"{v[field]['rel_rms']:.3f}" for v in e["layers"].values())
    return f"| {e['label']} | {cells} | {worst(e, field):.3f} |"


def conclusion(study: dict) -> str:
    own = find(study, "sevennet", study["n_own_features"])
    kmax = max_k_meeting_goal(study)
    bes = sorted((e for e in study["results"] if e["family"] == "bessel"), key=lambda e: e["K"])
    txt = (
        f"Capacity limit, not a fitting problem. The best linear map on SevenNet's own "
        f"{study['n_own_features']} features leaves a held-out relative RMS error of "
        f"{worst(own, 'heldout'):.3f} in the worst layer (R^2 pooled "
        f"{100 * min(v['heldout']['r2_pooled'] for v in own['layers'].values()):.1f} %) and "
        f"{worst(own, 'heldout_deriv'):.3f} in d(output)/dr; least squares is the optimum of "
        "this error, so no other fit of the same map does better on the radial functions (the "
        "fine-tune can only move the error between distances and layers; how far a longer "
        "fine-tune could compensate through the other layers is not measured here). "
    )
    txt += "With fixed Bessel x envelope bases the worst-layer error (value / derivative) is " + (
        ", ".join(
            f"K={e['K']}: {worst(e, 'heldout'):.3f} / {worst(e, 'heldout_deriv'):.3f} "
            f"({e['parameters']['reduction_pct']:.2f} % fewer parameters)"
            for e in bes
        )
        + ". "
    )
    if kmax is None:
        txt += f"No Bessel K meets the >= {study['goal_param_cut_pct']:.0f} % parameter goal. "
    else:
        txt += f"The >= {study['goal_param_cut_pct']:.0f} % parameter goal forces K <= {kmax}. "
    ref = study.get("trim_reference")
    if ref:
        txt += extrapolation(study, ref["force_mae_meV_A_lsq"])
    spl = {e["K"]: worst(e, "heldout") for e in study["results"] if e["family"] == "bspline"}
    if spl:
        txt += (
            "Cubic B-splines at equal K (worst layer): "
            + ", ".join(
                f"K={K}: {v:.3f} vs Bessel {worst(find(study, 'bessel', K), 'heldout'):.3f}"
                for K, v in sorted(spl.items())
                if find(study, "bessel", K) is not None
            )
            + "."
        )
    return txt


def extrapolation(study: dict, force_mae: float, target: float = 10.0) -> str:
    """A rough scale: the trim's force MAE (least squares, own features) scaled by each Bessel
    basis's worst-layer error ratio to the own features (value and derivative ratios)."""
    own = find(study, "sevennet", study["n_own_features"])
    v0, d0 = worst(own, "heldout"), worst(own, "heldout_deriv")
    bes = sorted((e for e in study["results"] if e["family"] == "bessel"), key=lambda e: e["K"])
    est = ", ".join(
        f"K={e['K']}: {force_mae * worst(e, 'heldout') / v0:.0f}-"
        f"{force_mae * worst(e, 'heldout_deriv') / d0:.0f}"
        for e in bes
    )
    need = target / force_mae

    kmax = max_k_meeting_goal(study) or 0

    def first_k(field, limit):
        ks = [e["K"] for e in bes if worst(e, field) <= limit]
        return (f"K={min(ks)}" if ks else f"no K up to {bes[-1]['K']}"), min(ks, default=10**9)

    (kv, nv), (kd, nd) = first_k("heldout", need * v0), first_k("heldout_deriv", need * d0)
    beyond = "beyond" if min(nv, nd) > kmax else "not beyond"
    return (
        f"For scale only (assumes force error proportional to the radial error, not measured): "
        f"the trim's {force_mae:.1f} meV/A force MAE after least squares on the own features, "
        f"scaled by the value and derivative error ratios, suggests {est} meV/A; {target:.0f} "
        f"meV/A needs both ratios near {need:.2f} (value <= {need * v0:.3f}, derivative <= "
        f"{need * d0:.3f}): values from {kv}, derivatives from {kd} on, {beyond} what the "
        "parameter goal allows. "
    )


def _intro_lines(study: dict) -> list[str]:
    """Title, environment, question, conclusion and method."""
    env, m = study["environment"], study["model"]
    return [
        "# SevenNet-0 trim: capacity of a linear map on a small radial basis",
        "",
        f"Generated on {env['date_utc']} (wall time "
        f"{study['wall_seconds']:.0f} s). Command: `{study['command']}`. Environment: Python "
        f"{env['python']}, torch {env['torch']}, sevenn {env['sevenn']}, e3nn {env['e3nn']}, "
        f"numpy {env['numpy']}, ASE {env['ase']}; {env['cpu']} (torch threads "
        f"{env['torch_threads']}).",
        "",
        "## Question",
        "",
        "The trim (report.md) replaces each layer's radial MLP (8 -> 64 -> 64 -> n) by a linear "
        "map on SevenNet's 8 envelope-weighted Bessel features and misses the accuracy goals "
        "(force MAE 95 meV/A vs <= 10; volumes 12 % vs <= 0.5 %). Is that a fitting problem or a "
        "capacity limit? For every basis below, the best linear map (least squares, float64) "
        "from the basis to all n outputs of each layer's MLP at once is fitted on one set of "
        "distances and measured on others.",
        "",
        "## Conclusion",
        "",
        conclusion(study),
        "",
        "## Method",
        "",
        f"- Fitting distances: {study['distances']['fit']}.",
        f"- Held-out (real): {study['distances']['heldout']}; quantiles (0, 1, 50, 99, 100 %): "
        + ", ".join(f"{q:.2f}" for q in study["distances"]["quantiles_heldout"])
        + " A.",
        f"- Held-out (uniform): {study['distances']['uniform']}.",
        "- Error: relative RMS = sqrt(SS_res / SS_tot) pooled over all outputs of a layer "
        "(SS_tot about each output's mean); R^2 pooled = 1 - relative RMS^2. Derivative: the "
        f"same measure for d(output)/dr, central differences with step {study['fd_step']} A "
        "in float64, with the map fitted to values only (as the trim does).",
        "- Bases: SevenNet's own features (its 8 trained Bessel frequencies times its XPLOR "
        f"envelope); Bessel sin(k pi r / r_c)/r, k = 1..K, r_c = {study['cutoff']} A, times the "
        "same envelope; uniform cubic B-splines on [r_min, r_c] times the envelope.",
        f"- Parameters: from the loaded model: {m['trainable']:,} trainable; MLP weights per "
        f"layer {', '.join(f'{p:,}' for p in m['mlp_params'])}; outputs per layer "
        f"{', '.join(map(str, m['n_out']))}. A K-function map has K x n weights; a fixed "
        f"basis also removes the model's {m['basis_trainable']} trainable Bessel frequencies.",
        "",
    ]


def _error_tables(study: dict) -> list[str]:
    """Relative RMS errors per basis and layer: values and derivatives, held-out real and
    uniform distances, and the fitting distances."""
    keys = study["model"]["layers"]
    head = " | ".join(
        f"{k.split('_')[0]} (n={n})" for k, n in zip(keys, study["model"]["n_out"], strict=True)
    )
    sep = "|---" * (len(keys) + 2) + "|"
    L = [
        "## Relative RMS error of the outputs, held-out real distances",
        "",
        f"| basis | {head} | worst |",
        sep,
    ]
    L += [_rel_row(e, "heldout") for e in study["results"]]
    for field, title in (
        ("heldout_deriv", "Relative RMS error of d(output)/dr, held-out real distances"),
        ("uniform", "Relative RMS error of the outputs, uniform held-out distances"),
        ("uniform_deriv", "Relative RMS error of d(output)/dr, uniform held-out distances"),
        ("fit", "Relative RMS error on the fitting distances"),
    ):
        L += ["", f"## {title}", "", f"| basis | {head} | worst |", sep]
        L += [_rel_row(e, field) for e in study["results"]]
    return L


def _r2_lines(study: dict) -> list[str]:
    """Pooled R^2 per layer and the parameter cut of every basis."""
    L = [
        "",
        "## R^2 (held-out real distances) and parameter cut",
        "",
        "| basis | R^2 pooled per layer (%) | R^2 mean over outputs, worst layer (%) | "
        "trainable after | parameter cut | meets >= 25 % |",
        "|---|---|---|---|---|---|",
    ]
    for e in study["results"]:
        p = e["parameters"]
        pooled = " / ".join(f"{100 * v['heldout']['r2_pooled']:.2f}" for v in e["layers"].values())
        r2m = min(100 * v["heldout"]["r2_mean"] for v in e["layers"].values())
        ok = "yes" if p["reduction_pct"] >= study["goal_param_cut_pct"] else "no"
        L.append(
            f"| {e['label']} | {pooled} | {r2m:.2f} | {p['trimmed_trainable']:,} | "
            f"-{p['removed']:,} ({p['reduction_pct']:.2f} %) | {ok} |"
        )
    return L


def _label_check_lines(study: dict) -> list[str]:
    """What the labels of the sample are (SevenNet-0's predictions, not DFT)."""
    lc = study.get("label_check")
    L = ["", "## What the data can check: labels are SevenNet-0's own predictions", ""]
    if lc:
        L.append(
            f"`{lc['file']}` (the MPTrj sample) carries SevenNet-0 labels, not DFT: on "
            f"{lc['frames_checked']} of its {lc['frames_in_file']} frames ({lc['atoms_checked']} "
            f"atoms, spread over the file) the loaded SevenNet-0 differs from the stored labels "
            f"by {lc['force_mae_meV_A']:.4f} meV/A force MAE (max {lc['force_max_meV_A']:.4f}; "
            f"labels are rounded to 1e-6 eV/A), {lc['energy_mae_meV_atom']:.2e} meV/atom energy "
            f"MAE and at most {lc['stress_max_meV_A3']:.2e} meV/A^3 stress. The distillation set "
            "(data/distill) has the same teacher. So accuracy against DFT cannot be checked on "
            "this machine: every figure of the trim is agreement with the original model."
        )
    else:
        L.append("MPTrj sample not found; label check not run.")
    return L


def markdown(study: dict) -> str:
    """basis_study.md from the study's results (basis_study.json)."""
    L = _intro_lines(study) + _error_tables(study) + _r2_lines(study)
    L += _label_check_lines(study)
    return "\n".join(L) + "\n"


def report_section(study_path: Path) -> list[str]:
    """Lines for report.md linking basis_study.md (empty when the study has not been run)."""
    study_path = Path(study_path)
    if not study_path.exists():
        return []
    study = json.loads(study_path.read_text())
    own = find(study, "sevennet", study["n_own_features"])
    kmax = max_k_meeting_goal(study)
    parts = [f"own {study['n_own_features']} features {worst(own, 'heldout'):.3f}"]
    for K in sorted({kmax or 0, (kmax or 0) + 2} - {0}):
        e = find(study, "bessel", K)
        if e is not None:
            parts.append(
                f"Bessel K={K} {worst(e, 'heldout'):.3f} "
                f"({e['parameters']['reduction_pct']:.2f} % fewer parameters)"
            )
    line = (
        f"[basis_study.md]({study_path.with_suffix('.md').name}) asks whether the accuracy gap "
        "is a fitting problem or a capacity limit: it is a capacity limit. Worst-layer relative "
        "RMS error of the best linear map to the radial MLP outputs on held-out distances: "
        + "; ".join(parts)
        + f"; derivative d/dr with the own features {worst(own, 'heldout_deriv'):.3f}."
    )
    if kmax is not None:
        line += f" The >= {study['goal_param_cut_pct']:.0f} % parameter goal forces K <= {kmax}."
    lc = study.get("label_check")
    if lc:
        line += (
            f" The MPTrj sample's labels are SevenNet-0's own (force MAE "
            f"{lc['force_mae_meV_A']:.4f} meV/A on {lc['frames_checked']} frames), so accuracy "
            "against DFT cannot be checked here."
        )
    return ["## Basis study (capacity of the linear map)", "", line, ""]
