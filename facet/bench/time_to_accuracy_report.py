"""Time to accuracy, step 4 (``report``): Facet's validation curve from its ``log.csv``, the
time each model needs to reach a force MAE, the ratio at MACE's final validation force MAE with
its split into steps x step cost, and the report (``results.json``, ``README.md``, the plot).

The method is the docstring of :mod:`facet.bench.time_to_accuracy`, which re-exports every name
here and runs this step from its command line.
"""

from __future__ import annotations

import csv
import json
import statistics
import subprocess
import time
from pathlib import Path

from .train_peers import scrub


# ------------------------------------------------------------------ Facet's curve
def facet_curve(log_csv: Path, outlier: float = 3.0, max_step: int | None = None) -> dict:
    """Facet's validation curve against its training time, from ``log.csv`` (step 4).

    Returns ``points`` (``step``, ``cpu_s``: summed ``wall_s`` of the train rows up to that step,
    and the validation MAEs), ``seconds_per_step`` (median over train rows),
    ``structures_per_step`` (all structures over all steps), and ``startup_windows``: train
    rows whose ``wall_s`` exceeds ``outlier`` times the median (the first row of each process,
    holding start-up and compilation), with ``startup_excess_s``, their total above the median.
    ``max_step``: rows after it are left out (a run resumed there with another recipe).
    """
    with open(log_csv) as fh:
        rows = list(csv.DictReader(fh))
    cum, prev_step = 0.0, 0
    per_step, windows, points, structs = [], [], [], []
    for r in rows:
        step = int(r["step"])
        if max_step is not None and step > max_step:
            break
        if r["kind"] == "train":
            w = float(r["wall_s"])
            n = step - prev_step
            if n <= 0:
                raise ValueError(f"{log_csv}: train row at step {step} does not follow step "
                                 f"{prev_step}")
            cum += w
            per_step.append(w / n)
            windows.append((step, w, n))
            structs.append(float(r["structures_per_s"]) * w)
            prev_step = step
        elif r["kind"] == "val":
            if step != prev_step:
                raise ValueError(f"{log_csv}: val row at step {step} but the last train row is "
                                 f"at step {prev_step}")
            points.append({"step": step, "cpu_s": cum,
                           **{k: float(r[k]) for k in ("forces_mae", "energy_mae", "stress_mae")
                              if r.get(k)}})
    if not per_step:
        raise ValueError(f"{log_csv} has no train rows")
    med = statistics.median(per_step)
    start = [{"step": s, "wall_s": w, "steps": n} for s, w, n in windows if w / n > outlier * med]
    return {"points": points, "seconds_per_step": med,
            "structures_per_step": sum(structs) / prev_step, "last_step": prev_step,
            "train_s": cum, "startup_windows": start,
            "startup_excess_s": sum(x["wall_s"] - med * x["steps"] for x in start)}


def time_to_reach(points: list[dict], target: float, key: str = "forces_mae",
                  x: str = "cpu_s") -> dict:
    """First time a validation curve reaches ``target`` (linear between points).

    ``{"reached": True, x: value, "step": interpolated step}``; when the first point is already
    at or below the target ``"bound": "upper"`` (it was reached by then); when no point reaches
    it ``{"reached": False, "best": lowest value, x: time of the last point}`` (a lower bound).
    """
    pts = sorted(points, key=lambda p: p[x])
    for i, p in enumerate(pts):
        if p[key] <= target:
            if i == 0:
                return {"reached": True, x: p[x], "step": p["step"], "bound": "upper"}
            q = pts[i - 1]
            f = (q[key] - target) / (q[key] - p[key])
            return {"reached": True, x: q[x] + f * (p[x] - q[x]),
                    "step": q["step"] + f * (p["step"] - q["step"]), "bound": "interpolated"}
    return {"reached": False, x: pts[-1][x] if pts else None,
            "best": min((p[key] for p in pts), default=None), "bound": "lower"}


def compare(facet: dict, mace_points: list[dict], *, train_structures: int) -> dict:
    """The ratio at MACE's final validation force MAE and its split into steps x step cost."""
    final = mace_points[-1]
    target = final["forces_mae"]
    m = time_to_reach(mace_points, target)
    f = time_to_reach(facet["points"], target)
    out = {"target_forces_mae": target, "mace": m, "facet": f,
           "mace_final": {k: final.get(k) for k in ("step", "cpu_s", "wall_s", "forces_mae",
                                                      "energy_mae", "stress_mae")}}
    if f["reached"] and m["cpu_s"]:
        out["ratio"] = f["cpu_s"] / m["cpu_s"]
        out["ratio_kind"] = "upper bound" if f["bound"] == "upper" else "interpolated"
        mace_sps = m["cpu_s"] / m["step"]
        facet_sps = f["cpu_s"] / f["step"]
        out["split"] = {
            "facet_steps": f["step"], "mace_steps": m["step"],
            "steps_ratio": f["step"] / m["step"],
            "facet_cpu_s_per_step": facet_sps, "mace_cpu_s_per_step": mace_sps,
            "step_cost_ratio": facet_sps / mace_sps,
            "facet_epochs": f["step"] * facet["structures_per_step"] / train_structures,
            "mace_epochs": m["step"] * 8 / train_structures}
    else:
        out["ratio"] = None
        out["ratio_kind"] = f"Facet had not reached it (best {f.get('best')}) by its last point"
    # the ratio at every MACE validation point (each as a target)
    out["ratio_by_target"] = []
    for p in mace_points:
        mm, ff = time_to_reach(mace_points, p["forces_mae"]), time_to_reach(facet["points"],
                                                                            p["forces_mae"])
        out["ratio_by_target"].append({
            "target": p["forces_mae"], "mace_cpu_s": mm["cpu_s"], "facet_cpu_s": ff["cpu_s"],
            "facet_bound": ff["bound"],
            "ratio": ff["cpu_s"] / mm["cpu_s"] if ff["reached"] and mm["cpu_s"] else None})
    return out


# ------------------------------------------------------------------ report
def plot(facet: dict, mace_points: list[dict], cmp: dict, path: Path,
         zero_force_mae: float | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    fx = [p["cpu_s"] / 3600 for p in facet["points"]]
    ax.plot(fx, [p["forces_mae"] for p in facet["points"]], "o-", label="Facet (facet-s)")
    mx = [p["cpu_s"] / 3600 for p in mace_points]
    ax.plot(mx, [p["forces_mae"] for p in mace_points], "s-", label="MACE-MP-0-small arch.")
    t = cmp["target_forces_mae"]
    ax.axhline(t, color="grey", lw=0.8, ls="--")
    if cmp["facet"]["reached"]:
        ax.axvline(cmp["facet"]["cpu_s"] / 3600, color="C0", lw=0.8, ls=":")
    ax.axvline(cmp["mace"]["cpu_s"] / 3600, color="C1", lw=0.8, ls=":")
    if zero_force_mae:
        ax.axhline(zero_force_mae, color="k", lw=0.8, alpha=0.5)
        ax.text(0.01, zero_force_mae, "zero forces", va="bottom", fontsize=8,
                transform=ax.get_yaxis_transform())
    ax.set_xlim(left=0)
    ax.set_xlabel("training CPU time (hours, one core)")
    ax.set_ylabel("validation force MAE (meV/A)")
    r = cmp.get("ratio")
    ax.set_title("Time to MACE's final validation force MAE"
                 + (f": ratio {r:.2f}" if r is not None else ""))
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def report(work: Path, facet_log: Path, out: Path, *, command: str, facet_config: Path | None,
           extra: dict | None = None, facet_max_step: int | None = None) -> dict:
    prepared = json.loads((work / "prepared.json").read_text())
    train_row = json.loads((work / "mace_run" / "train_row.json").read_text())
    mace_points = json.loads((work / "mace_val.json").read_text())
    facet = facet_curve(facet_log, max_step=facet_max_step)
    cmp = compare(facet, mace_points, train_structures=prepared["splits"]["train"]["structures"])
    out.mkdir(parents=True, exist_ok=True)
    result = {"command": command, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "data": prepared, "facet": {**facet, "log": str(facet_log),
                                          "config": facet_config.read_text()
                                          if facet_config and facet_config.exists() else None},
              "mace": {**{k: v for k, v in train_row.items() if k != "snapshots"},
                       "points": mace_points},
              "comparison": cmp, "meta": _meta(facet_log), **(extra or {})}
    result = scrub(result, str(work))
    # no paths of this machine in the report: the Facet run's checkout becomes relative, the
    # MACE environment <mace-venv>
    text = json.dumps(result, default=str)
    top = subprocess.run(["git", "-C", str(facet_log.resolve().parent), "rev-parse",
                          "--show-toplevel"], capture_output=True, text=True)
    if top.returncode == 0 and top.stdout.strip():
        text = text.replace(top.stdout.strip() + "/", "")
    venv = train_row.get("venv")
    if venv:
        text = text.replace(venv, "<mace-venv>")
    result = json.loads(text)
    (out / "results.json").write_text(json.dumps(result, indent=1, default=str))
    notes_file = out / "notes.md"
    write_readme(result, out, notes_file.read_text() if notes_file.exists() else "")
    plot(facet, mace_points, cmp, out / "time_to_accuracy.png",
         zero_force_mae=prepared.get("val_zero_force_mae"))
    return result


def _fmt(x, spec=".0f", none="n/a"):
    return none if x is None else format(x, spec)


def write_readme(result: dict, out: Path, notes: str = "") -> None:
    """``out/README.md`` from :func:`report`'s result (``notes``: text appended verbatim)."""
    c, d, f, m = (result["comparison"], result["data"], result["facet"], result["mace"])
    sp = d["splits"]
    meta = result.get("meta", {})
    r = c.get("ratio")
    lines = [
        "# Time to accuracy: Facet vs MACE's own trainer", "",
        f"Generated by `{result['command']}` on {result['date']} (method: docstring of "
        "`facet/bench/time_to_accuracy.py`).", "",
        f"**Ratio (Facet CPU time / MACE CPU time to reach MACE's final validation force MAE of "
        f"{c['target_forces_mae']:.1f} meV/A): "
        + (f"{r:.2f}** ({c['ratio_kind']}); goal <= 0.1 (the Facet paper's claim of under 10 % "
           f"of the training compute): {'met' if r <= 0.1 else 'not met'}."
           if r is not None else f"not measured** ({c['ratio_kind']})."), "",
        "## Set-up", "",
        f"* Data: `{d['data']}` split by material: train {sp['train']['structures']:,} "
        f"structures ({sp['train']['materials']:,} materials), validation "
        f"{sp['val']['structures']:,} ({sp['val']['materials']}), test "
        f"{sp['test']['structures']:,} ({sp['test']['materials']}). Both models train on the same "
        "training split and are scored on the whole validation split (force-component MAE, "
        "meV/A). Predicting zero forces gives "
        f"{_fmt(d.get('val_zero_force_mae'), '.1f')} meV/A on it.",
        f"* Facet: facet-s, its default recipe (config in `results.json`), float32, batch of up "
        f"to 8 structures ({f['structures_per_step']:.2f} on average per step), validation every "
        f"2,000 steps (EMA weights); training time from its `log.csv` (`wall_s` of the train rows "
        "summed: optimiser steps and host-side batching, no validation or checkpoint writes; "
        f"{len(f['startup_windows'])} start-up window(s) holding compilation, "
        f"{f['startup_excess_s']:.0f} s above a normal window, included).",
        f"* MACE: `mace_run_train` (mace-torch {m.get('versions', {}).get('mace')}, torch "
        f"{m.get('versions', {}).get('torch')}, e3nn {m.get('versions', {}).get('e3nn')}), "
        f"MACE-MP-0-small's architecture ({_fmt(m.get('params'), ',')} parameters, "
        f"{m.get('elements')} elements), float32, one thread, batch {m.get('batch_size')}, "
        "lr 0.01, EMA 0.99, universal loss, E0s by least squares; EMA snapshots every "
        f"{m.get('every')} steps scored afterwards with `mace_eval_configs`; CPU seconds of "
        "the process from its first optimiser step (snapshot writes excluded).",
        f"* Machine: {meta.get('cpu', '?')}, 2 cores. Facet trained on core 1 "
        f"(its CPU share over MACE's run: {_fmt(m.get('facet_process_cpu_share'), '.2f')}, so "
        "its wall clock is its CPU time); MACE on core 0, shared with other work (its CPU "
        f"share while training: {_fmt(m.get('cpu_share_training'), '.2f')}).",
        f"* Versions: facet {meta.get('facet_commit', '?')} (the checkout Facet's run trains "
        f"from: {meta.get('facet_run_commit', '?')} when the report was written), jax "
        f"{meta.get('jax', '?')}.", "",
        "![validation force MAE vs CPU time](time_to_accuracy.png)", "",
        "## Result", "",
        "| | Facet (facet-s) | MACE-MP-0-small arch. |", "|---|---|---|"]
    fm = c["facet"]
    mm = c["mace"]
    lines += [
        f"| CPU time to {c['target_forces_mae']:.1f} meV/A (s) | {_fmt(fm.get('cpu_s'))}"
        f"{' (upper bound)' if fm.get('bound') == 'upper' else ''}"
        f"{'' if fm['reached'] else ' (not reached)'} | {_fmt(mm.get('cpu_s'))} |"]
    if "split" in c:
        s = c["split"]
        lines += [
            f"| optimiser steps to it | {s['facet_steps']:.0f} | {s['mace_steps']:.0f} |",
            f"| CPU s per step | {s['facet_cpu_s_per_step']:.3f} | "
            f"{s['mace_cpu_s_per_step']:.3f} |",
            f"| passes over the training split | {s['facet_epochs']:.2f} | "
            f"{s['mace_epochs']:.2f} |", "",
            f"Ratio {r:.2f} = steps ratio {s['steps_ratio']:.2f} x step-cost ratio "
            f"{s['step_cost_ratio']:.2f}."]
    lines += ["", "Validation curves (force / energy / stress MAE, meV/A, meV/atom, meV/A^3):",
              "", "| model | step | CPU s | forces | energy | stress |", "|---" * 6 + "|"]
    for name, pts in (("facet", f["points"]), ("mace", m["points"])):
        for p in pts:
            lines.append(f"| {name} | {p['step']} | {p['cpu_s']:.0f} | {p['forces_mae']:.1f} | "
                         f"{_fmt(p.get('energy_mae'), '.1f')} | "
                         f"{_fmt(p.get('stress_mae'), '.1f')} |")
    lines += ["", "The ratio at each MACE validation point taken as the target:", "",
              "| target (meV/A) | MACE CPU s | Facet CPU s | ratio |", "|---|---|---|---|"]
    for t in c["ratio_by_target"]:
        ub = " (upper bound)" if t["facet_bound"] == "upper" else ""
        lines.append(f"| {t['target']:.1f} | {_fmt(t['mace_cpu_s'])} | "
                     f"{_fmt(t['facet_cpu_s'])}{ub} | {_fmt(t['ratio'], '.2f')} |")
    if notes:
        lines += ["", notes.rstrip()]
    (out / "README.md").write_text("\n".join(lines) + "\n")


def _meta(facet_log: Path) -> dict:
    from .meta import cpu_model, git_state

    out = {"cpu": cpu_model(), "facet_commit": (git_state().get("commit") or "?")[:7]}
    try:
        import jax

        out["jax"] = jax.__version__
    except ImportError:
        pass
    res = subprocess.run(["git", "-C", str(facet_log.parent), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True)
    if res.returncode == 0:
        out["facet_run_commit"] = res.stdout.strip()
    return out

