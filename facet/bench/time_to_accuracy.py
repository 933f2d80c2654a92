"""Time to accuracy: CPU time Facet needs to reach MACE's held-out force error, against MACE's.

    python scripts/bench_time_to_accuracy.py prepare --data runs/default2 --work W
    python scripts/bench_time_to_accuracy.py train-mace --work W --budget-minutes 75 --venv V
    python scripts/bench_time_to_accuracy.py eval-mace --work W --venv V
    python scripts/bench_time_to_accuracy.py report --work W \\
        --facet-log runs/default2/run/log.csv --out docs/benchmarks/accuracy/time_to_accuracy

Issue 18 (the paper's claim: Facet matches leading models with under 10 % of their training
compute). Both models train on the same training split and are validated on the same held-out
validation split (split by material); the measure is the validation force-component MAE (meV/A,
the definition of :mod:`facet.train.loss` and :func:`facet.bench.accuracy.score`) against the
CPU seconds spent training.

1. ``prepare``: the splits are read from ``--data``: a folder holding prepared split files
   ``train/val/test`` (``.json.gz``, ``.json`` MPTrj layout, or ``.extxyz``), a distillation
   folder of shards (``shards/`` + ``splits.json``, split files written by
   :func:`facet.teacher.shards.write_split_files`), or what :func:`facet.bench.accuracy.
   load_splits` reads. Each split is written once as extxyz with MACE's ``REF_*`` keys, plus
   ``val_small.extxyz`` (the first ``--mace-valid`` validation frames), the file MACE's trainer is
   given as its own validation set: it validates once per epoch and before training, and the
   full validation split is scored on snapshots in another process instead (step 3).
2. ``train-mace``: MACE's own trainer (``mace_run_train``, MACE-MP-0 architecture at
   ``--mace-size``, float32, one thread, batch ``--batch-size``, the command of
   :func:`facet.bench.peers.mace_train.command`) under
   :mod:`facet.bench.peers.mace_snapshots`, which saves the EMA model every ``--every`` steps
   with the CPU seconds spent since the first optimiser step, and stops the run after
   ``--budget-minutes`` of wall clock from launch. The CPU share MACE got (process CPU seconds
   over wall seconds) is recorded, and so is that of ``--facet-pid`` (the Facet run, if it trains
   at the same time) over the same window.
3. ``eval-mace``: every snapshot (newest first) predicts the whole validation split with MACE's
   own batched evaluator (``mace_eval_configs``, float32, stress on) and is scored with
   :func:`facet.bench.accuracy.score`.
4. ``report``: Facet's curve comes from its training ``log.csv``: the ``wall_s`` of a train row is
   the wall clock of the optimiser steps since the previous row (host-side batching included;
   validation and checkpoint writes excluded; the first row of a process also holds start-up
   and compilation); summing them over the rows (a resumed run truncates its log at the
   checkpoint it resumed from, so the rows are exactly the steps of the surviving history) gives
   the training time at each validation row. On a core of its own Facet's wall clock is its CPU
   time (the measured share is reported). The time each model needs to reach a force MAE is the
   first crossing of its validation curve, linear between validation points; the ratio is
   Facet's time over MACE's at MACE's final (last snapshot) validation force MAE. The ratio
   splits into steps (Facet's steps to reach it / MACE's) times seconds per step.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from .accuracy import load_splits, score
from .peers import mace_snapshots, mace_train
from .train_peers import THREAD_ENV, read_frames, scrub, write_mace_extxyz

SPLITS = ("train", "val", "test")
SPLIT_SUFFIXES = (".json.gz", ".json", ".extxyz")


# ------------------------------------------------------------------ data
def split_file_paths(folder: Path) -> dict[str, Path] | None:
    """``{split: file}`` when ``folder`` holds one prepared file per split, else ``None``;
    a folder holding some of them but not all is an error naming what is missing."""
    found: dict[str, Path] = {}
    for name in SPLITS:
        hits = [folder / f"{name}{s}" for s in SPLIT_SUFFIXES if (folder / f"{name}{s}").exists()]
        if len(hits) > 1:
            raise ValueError(f"{folder} holds {len(hits)} files for the {name} split "
                             f"({[h.name for h in hits]}); keep one")
        if hits:
            found[name] = hits[0]
    if not found:
        return None
    missing = [n for n in SPLITS if n not in found]
    if missing:
        want = [m + s for m in missing for s in SPLIT_SUFFIXES]
        raise FileNotFoundError(f"{folder} has split files {sorted(found)} but no {missing} "
                                f"(expected one of {want})")
    return found


def load_split_files(data: str, work: Path | None = None) -> dict[str, list]:
    """The train/val/test frames of ``data`` (see the module docstring, step 1)."""
    p = Path(data)
    if p.is_dir():
        files = split_file_paths(p)
        if files is None and (p / "shards").is_dir():
            from facet.teacher.shards import write_split_files

            if work is None:
                raise ValueError(f"{data} is a folder of shards: a work folder is needed to "
                                 "write its split files")
            out = write_split_files(str(p), str(work))
            files = {name: Path(v["path"]) for name, v in out.items()}
        if files is not None:
            return {name: read_frames(str(f)) for name, f in files.items()}
    return load_splits(data, split_by="material")


def prepare(data: str, work: Path, *, mace_valid: int = 16) -> dict:
    """Write the splits as extxyz in ``work`` (and ``val_small.extxyz``); returns the summary
    that ``work/prepared.json`` also holds."""
    work.mkdir(parents=True, exist_ok=True)
    splits = load_split_files(data, work)
    out: dict = {"data": data, "splits": {}}
    for name in SPLITS:
        frames = splits[name]
        if not frames:
            raise ValueError(f"the {name} split of {data} is empty")
        path = work / f"{name}.extxyz"
        write_mace_extxyz(frames, path)
        out["splits"][name] = {"structures": len(frames),
                               "materials": len({f.material_id for f in frames}),
                               "atoms": int(sum(f.n_atoms for f in frames)), "path": path.name}
    if mace_valid < 1:
        raise ValueError(f"--mace-valid must be >= 1, got {mace_valid}")
    write_mace_extxyz(splits["val"][:mace_valid], work / "val_small.extxyz")
    # the force MAE of predicting zero forces: where the validation curves start from
    out["val_zero_force_mae"] = 1e3 * float(np.mean(np.abs(np.concatenate(
        [np.asarray(f.forces).reshape(-1) for f in splits["val"]]))))
    z = sorted({int(n) for f in splits["train"] for n in np.asarray(f.numbers)})
    out["train_elements"] = z
    out["outside_mptrj_elements"] = [n for n in z if n not in mace_train.MPTRJ_Z]
    (work / "prepared.json").write_text(json.dumps(out, indent=1))
    return out


# ------------------------------------------------------------------ MACE
def _cpu_seconds(pid: int) -> float | None:
    return mace_train._cpu_seconds(pid)


def train_mace(work: Path, *, venv: str | None, budget_s: float, every: int, size: str = "small",
               batch_size: int = 8, elements: str = "mptrj", facet_pid: int | None = None,
               max_steps: int | None = None) -> dict:
    """Run MACE's trainer under :mod:`facet.bench.peers.mace_snapshots` (step 2)."""
    exe, why = mace_train.find_mace(venv)
    if exe is None:
        raise RuntimeError(why)
    run_dir = work / "mace_run"
    if run_dir.exists() and any(run_dir.iterdir()):
        raise FileExistsError(f"{run_dir} exists and is not empty: use another --work or move it")
    run = mace_train.MaceRun(
        train_file=str(work / "train.extxyz"), valid_file=str(work / "val_small.extxyz"),
        work_dir=str(run_dir), size=size, batch_size=batch_size, epochs=1000, eval_interval=1,
        ema=True, atomic_numbers=mace_train.MPTRJ_Z if elements == "mptrj" else None)
    mace_args = mace_train.command(run, exe)[1:]
    py = str(Path(exe).parent / "python")
    snap_dir = run_dir / "snapshots"
    cmd = [py, mace_snapshots.__file__, "--snap-dir", str(snap_dir), "--every", str(every),
           "--budget-s", str(budget_s), *(["--max-steps", str(max_steps)] if max_steps else []),
           "--", *mace_args]
    run_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, **THREAD_ENV, TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD="1")
    facet0 = (time.time(), _cpu_seconds(facet_pid)) if facet_pid else None
    t0 = time.perf_counter()
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    samples = []
    with open(run_dir / "stdout.txt", "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                cwd=str(run_dir), start_new_session=True)
        while proc.poll() is None:
            time.sleep(2.0)
            c = _cpu_seconds(proc.pid)
            if c is not None:
                samples.append((time.perf_counter() - t0, c))
            if time.perf_counter() - t0 > budget_s + 600:  # the wrapper stops itself; backstop
                mace_train.stop(proc)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = "\n".join((run_dir / "stdout.txt").read_text(errors="replace").splitlines()[-20:])
        raise RuntimeError(f"MACE training failed (exit {proc.returncode}):\n{tail}")
    snaps = read_snapshot_index(snap_dir)
    params = (mace_train.count_model_parameters(str(snap_dir / snaps[-1]["file"]), venv=venv)
              if snaps else None)
    row = {"trainer": "mace", "model": f"mace-{size}", "command": " ".join(cmd[1:]),
           "venv": str(Path(exe).parent.parent),
           "started": started, "wall_s": wall, "budget_s": budget_s, "every": every,
           "batch_size": batch_size, "elements": elements, "snapshots": snaps,
           "versions": mace_train._mace_versions(str(Path(exe).parent.parent)),
           "params": params}
    if snaps and len(samples) >= 2:
        # CPU share while training: process CPU over wall from the first to the last sample
        (w0, c0), (w1, c1) = samples[0], samples[-1]
        row["cpu_share_process"] = (c1 - c0) / (w1 - w0) if w1 > w0 else None
        last = snaps[-1]
        row["cpu_share_training"] = last["cpu_s"] / last["wall_s"] if last["wall_s"] else None
    results = sorted((run_dir / "results").glob("*_train.txt"))
    if results:
        opt = [json.loads(ln) for ln in results[-1].read_text().splitlines()
               if '"mode": "opt"' in ln]
        times = [float(r["time"]) for r in opt[2:]]
        if times:
            row["take_step_median_s"] = statistics.median(times)
    if facet0:
        w1, c1 = time.time(), _cpu_seconds(facet_pid)
        if facet0[1] is not None and c1 is not None:
            row["facet_process_cpu_share"] = (c1 - facet0[1]) / (w1 - facet0[0])
    (run_dir / "train_row.json").write_text(json.dumps(row, indent=1))
    return row


def read_snapshot_index(snap_dir: Path) -> list[dict]:
    path = snap_dir / "snapshots.jsonl"
    if not path.exists():
        return []
    rows = [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]
    return sorted(rows, key=lambda r: r["step"])


def read_mace_predictions(path: Path, prefix: str = "MACE_") -> list[dict]:
    """Per-structure predictions from a ``mace_eval_configs`` output file."""
    import ase.io

    out = []
    for i, atoms in enumerate(ase.io.iread(str(path), index=":", format="extxyz")):
        try:
            out.append({"energy": float(atoms.info[prefix + "energy"]),
                        "forces": np.asarray(atoms.arrays[prefix + "forces"], float),
                        "stress": np.asarray(atoms.info[prefix + "stress"], float).reshape(3, 3)})
        except KeyError as e:
            raise ValueError(f"{path}: structure {i} has no {e.args[0]!r} prediction") from None
    return out


def eval_mace(work: Path, *, venv: str | None, batch_size: int = 32,
              deadline: float | None = None, follow: bool = False) -> list[dict]:
    """Score every snapshot (newest first; stop starting new ones after ``deadline``, a Unix
    time) on the whole validation split; results in ``work/mace_val.json`` (step 3).

    ``follow``: keep scoring snapshots as the training writes them (oldest first), until the
    training has ended (``mace_run/train_row.json`` written) and every snapshot is scored. This
    runs beside the training on the same core and takes CPU from it, which changes MACE's wall
    clock but not its counted CPU seconds.
    """
    if follow:
        row_file = work / "mace_run" / "train_row.json"
        while True:
            ended = row_file.exists()
            _eval_pending(work, venv=venv, batch_size=batch_size, deadline=deadline,
                          newest_first=ended)
            if ended or (deadline is not None and time.time() > deadline):
                return _eval_pending(work, venv=venv, batch_size=batch_size,
                                     deadline=deadline, newest_first=True)
            time.sleep(30)
    return _eval_pending(work, venv=venv, batch_size=batch_size, deadline=deadline,
                         newest_first=True)


def _eval_pending(work: Path, *, venv: str | None, batch_size: int, deadline: float | None,
                  newest_first: bool) -> list[dict]:
    exe, why = mace_train.find_mace(venv)
    if exe is None:
        raise RuntimeError(why)
    ev = Path(exe).parent / "mace_eval_configs"
    snap_dir = work / "mace_run" / "snapshots"
    snaps = read_snapshot_index(snap_dir)
    if not snaps and not newest_first:
        return []
    if not snaps:
        raise FileNotFoundError(f"no snapshots in {snap_dir}")
    val_frames = None  # read once a snapshot is pending (follow mode polls often)
    out_path = work / "mace_val.json"
    done = {r["step"]: r for r in json.loads(out_path.read_text())} if out_path.exists() else {}
    env = dict(os.environ, **THREAD_ENV, TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD="1")
    for s in (reversed(snaps) if newest_first else snaps):
        if s["step"] in done:
            continue
        if deadline is not None and time.time() > deadline:
            print(f"deadline: snapshot at step {s['step']} not scored", flush=True)
            continue
        pred_file = snap_dir / f"val_pred_{s['step']:07d}.xyz"
        t0 = time.perf_counter()
        subprocess.run([str(ev), "--configs", str(work / "val.extxyz"),
                        "--model", str(snap_dir / s["file"]), "--output", str(pred_file),
                        "--default_dtype", "float32", "--batch_size", str(batch_size),
                        "--compute_stress"], check=True, env=env, capture_output=True)
        if val_frames is None:
            val_frames = read_frames(str(work / "val.extxyz"))
        metrics = score(val_frames, read_mace_predictions(pred_file))
        done[s["step"]] = {**s, **metrics, "eval_wall_s": time.perf_counter() - t0}
        print(f"step {s['step']}: cpu {s['cpu_s']:.0f} s, val forces MAE "
              f"{metrics['forces_mae']:.1f} meV/A", flush=True)
        out_path.write_text(json.dumps(sorted(done.values(), key=lambda r: r["step"]), indent=1))
    return sorted(done.values(), key=lambda r: r["step"])


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


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare", help="write the splits as extxyz into --work")
    p.add_argument("--data", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--mace-valid", type=int, default=16)
    t = sub.add_parser("train-mace", help="MACE's trainer with snapshots, stopped at a budget")
    t.add_argument("--work", required=True)
    t.add_argument("--venv")
    t.add_argument("--budget-minutes", type=float, required=True)
    t.add_argument("--every", type=int, default=500)
    t.add_argument("--max-steps", type=int)
    t.add_argument("--mace-size", choices=sorted(mace_train.SIZES), default="small")
    t.add_argument("--mace-elements", choices=["data", "mptrj"], default="mptrj")
    t.add_argument("--batch-size", type=int, default=8)
    t.add_argument("--facet-pid", type=int, help="a Facet training process to record the CPU "
                                                 "share of over the same window")
    e = sub.add_parser("eval-mace", help="score the snapshots on the validation split")
    e.add_argument("--work", required=True)
    e.add_argument("--venv")
    e.add_argument("--batch-size", type=int, default=32)
    e.add_argument("--deadline", help="HH:MM (UTC, today): start no snapshot after it")
    e.add_argument("--follow", action="store_true",
                   help="score snapshots while the training writes them")
    r = sub.add_parser("report", help="ratio, plot and results.json")
    r.add_argument("--work", required=True)
    r.add_argument("--facet-log", required=True)
    r.add_argument("--facet-config")
    r.add_argument("--out", required=True)
    r.add_argument("--facet-max-step", type=int,
                   help="leave out Facet's log after this step (its recipe changed there)")
    return ap


def _deadline(hhmm: str | None) -> float | None:
    if not hhmm:
        return None
    h, m = (int(x) for x in hhmm.split(":"))
    now = time.gmtime()
    return time.mktime((now.tm_year, now.tm_mon, now.tm_mday, h, m, 0, 0, 0, 0)) - time.timezone


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _parser().parse_args(argv)
    work = Path(args.work)
    if args.cmd == "prepare":
        print(json.dumps(prepare(args.data, work, mace_valid=args.mace_valid), indent=1))
    elif args.cmd == "train-mace":
        row = train_mace(work, venv=args.venv, budget_s=60.0 * args.budget_minutes,
                         every=args.every, size=args.mace_size, batch_size=args.batch_size,
                         elements=args.mace_elements, facet_pid=args.facet_pid,
                         max_steps=args.max_steps)
        print(json.dumps({k: v for k, v in row.items() if k != "snapshots"}, indent=1))
    elif args.cmd == "eval-mace":
        eval_mace(work, venv=args.venv, batch_size=args.batch_size,
                  deadline=_deadline(args.deadline), follow=args.follow)
    else:
        res = report(work, Path(args.facet_log), Path(args.out),
                     command="python scripts/bench_time_to_accuracy.py " + " ".join(argv),
                     facet_config=Path(args.facet_config) if args.facet_config else None,
                     facet_max_step=args.facet_max_step)
        print(json.dumps(res["comparison"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
