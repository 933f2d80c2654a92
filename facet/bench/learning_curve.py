"""Learning curves of the default recipe: held-out error against training-set size and steps.

    python -m facet.bench.learning_curve --data data/distill2 --frames 10000 25000 50000 \\
        --steps 20000 --e0 fit teacher --work runs/lc
    python -m facet.bench.learning_curve --from-log runs/default2/run --out DIR   # vs steps

Issue 16: what limits the default model, data or steps, is measured, not guessed.

*Against data size* (``--frames``): for each size, the smallest prefix of the sharded set's
shards (:func:`facet.teacher.distill2.write_split_files`; the catalog order is seeded, so a
prefix is a balanced subset) whose training split holds at least that many frames; the
validation and test splits are always those of every shard present, so every point is scored
on the same held-out materials. Each point trains ``--steps`` optimiser steps of ``--config``
(``facet train``, one process, the cosine schedule over those steps), then the best checkpoint
(EMA weights, lowest validation loss) predicts the test split (:func:`facet.train.evaluate`).
``--e0`` runs each size with least-squares E0s (``fit``) and/or the teacher's isolated-atom
energies (``teacher``: ``model.atomic_energies=<data>/teacher_e0.json``): the A/B of the
energy anchors.

*Against steps* (``--from-log``): the validation rows of a run's ``log.csv`` (held-out
materials, EMA weights) against optimiser step and wall time.

Outputs in ``--out`` (default ``docs/benchmarks/accuracy/learning_curve``): ``results.json``,
``README.md`` and ``learning_curve.png``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from .common import md_table, pyplot, write_json

DEFAULT_CONFIG = str(Path(__file__).resolve().parents[1] / "train/configs/distill2.yaml")
METRICS = (("energy_mae", "energy MAE (meV/atom)"), ("forces_mae", "force MAE (meV/A)"),
           ("stress_mae", "stress MAE (meV/A^3)"))


def shards_for_frames(data: str, frames: int) -> tuple[int, int]:
    """(number of leading shards, their training frames) for at least ``frames`` training
    frames; all shards if even they hold fewer."""
    from facet.teacher.distill2 import read_shard_meta, shard_paths

    with open(os.path.join(data, "splits.json")) as f:
        train = set(json.load(f)["train"])
    total = 0
    paths = shard_paths(data)
    for k, p in enumerate(paths, start=1):
        total += sum(m["n_frames"] for m in read_shard_meta(p) if m["mp_id"] in train)
        if total >= frames:
            return k, total
    return len(paths), total


def _train_point(args, work: Path, n_shards: int, e0: str) -> dict:
    from facet.teacher.distill2 import write_split_files

    data_dir = work / f"data-{n_shards}"
    split = write_split_files(args.data, str(data_dir), max_shards=n_shards,
                              splits=("train",))
    full = write_split_files(args.data, str(work / "data-all"), splits=("val", "test"))
    run_dir = work / f"run-{n_shards}-{e0}"
    over = [f"data.train=[{split['train']['path']}]", f"data.val=[{full['val']['path']}]",
            f"run.out_dir={run_dir}", f"run.max_steps={args.steps}",
            f"run.eval_every={max(1, args.steps // 10)}",
            f"run.checkpoint_every={max(1, args.steps // 10)}", "run.progress=false"]
    # both arms named explicitly: the recipe's own choice must not decide the A/B
    over.append("model.atomic_energies=" + (str(Path(args.data) / "teacher_e0.json")
                                            if e0 == "teacher" else "fit"))
    cmd = [sys.executable, "-m", "facet", "train", "--config", args.config, *over,
           *args.override]
    t0, c0 = time.time(), os.times()
    subprocess.run(cmd, check=True)
    c1 = os.times()
    cpu = (c1.children_user - c0.children_user) + (c1.children_system - c0.children_system)
    from facet.train.evaluate import evaluate

    res = evaluate(run_dir, [full["test"]["path"]], run_dir / "test", report=lambda *a: None)
    return {"shards": n_shards, "train_frames": split["train"]["frames"],
            "train_materials": split["train"]["materials"], "e0": e0, "steps": args.steps,
            "test_frames": full["test"]["frames"], "test_materials": full["test"]["materials"],
            "wall_s": round(time.time() - t0, 1), "cpu_s": round(cpu, 1),
            "test": res["metrics"]}


def read_validation_log(run: str | Path) -> list[dict]:
    """The ``kind == "val"`` rows of a run's ``log.csv`` as floats (step, MAEs), each with
    ``wall_s``: the training rows' ``wall_s`` (time since the previous training row) summed
    up to it, since the loop writes validation rows without one."""
    rows, wall = [], 0.0
    with open(Path(run) / "log.csv", newline="") as f:
        for row in csv.DictReader(f):
            if row.get("kind") == "train" and row.get("wall_s"):
                wall += float(row["wall_s"])
            if row.get("kind") != "val":
                continue
            rows.append({"wall_s": wall, **{k: float(row[k]) for k in ("step", *dict(METRICS))
                                            if row.get(k) not in (None, "")}})
    return rows


def _plot(points: list[dict], val_log: list[dict], out: Path) -> Path:
    plt = pyplot()
    ncol = 2 if points and val_log else 1
    fig, axes = plt.subplots(1, ncol, figsize=(5.5 * ncol, 4), squeeze=False)
    ax = axes[0][0]
    if points:
        for e0 in sorted({p["e0"] for p in points}):
            sel = sorted((p for p in points if p["e0"] == e0), key=lambda p: p["train_frames"])
            x = [p["train_frames"] for p in sel]
            for key, label in METRICS:
                ax.plot(x, [p["test"].get(key) for p in sel], "o-", label=f"{label}, E0 {e0}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("training frames")
        ax.set_title(f"test split, {points[0]['steps']} steps each")
        ax.legend(fontsize=7)
        ax = axes[0][ncol - 1]
    if val_log:
        x = [r["step"] for r in val_log]
        for key, label in METRICS:
            ax.plot(x, [r.get(key, float("nan")) for r in val_log], label=label)
        ax.set_yscale("log")
        ax.set_xlabel("optimiser step")
        ax.set_title("validation split (held-out materials)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    path = out / "learning_curve.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def report(points: list[dict], val_log: list[dict], out: Path, command: str) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "results.json", {"command": command, "points": points,
                                      "validation_log": val_log})
    lines = ["# Learning curves of the default recipe", "", f"`{command}`", ""]
    if points:
        lines += ["## Test error against training-set size", ""]
        lines += md_table(
            ["train frames", "materials", "E0", "steps", "E (meV/atom)", "F (meV/A)",
             "S (meV/A^3)", "CPU s"],
            [[p["train_frames"], p["train_materials"], p["e0"], p["steps"],
              f"{p['test'].get('energy_mae', float('nan')):.1f}",
              f"{p['test'].get('forces_mae', float('nan')):.1f}",
              f"{p['test'].get('stress_mae', float('nan')):.2f}", p["cpu_s"]]
             for p in sorted(points, key=lambda p: (p["e0"], p["train_frames"]))])
        lines.append("")
    if val_log:
        lines += ["## Validation error against optimiser steps", ""]
        lines += md_table(["step", "wall (h)", "E (meV/atom)", "F (meV/A)", "S (meV/A^3)"],
                          [[int(r["step"]), f"{r['wall_s'] / 3600:.2f}",
                            f"{r.get('energy_mae', float('nan')):.1f}",
                            f"{r.get('forces_mae', float('nan')):.1f}",
                            f"{r.get('stress_mae', float('nan')):.2f}"] for r in val_log])
        lines.append("")
    if points or val_log:
        lines += [f"![learning curve]({_plot(points, val_log, out).name})", ""]
    (out / "README.md").write_text("\n".join(lines))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="data/distill2")
    ap.add_argument("--config", default=DEFAULT_CONFIG)
    ap.add_argument("--frames", type=int, nargs="*", default=[],
                    help="training-set sizes (frames) of the data-size curve")
    ap.add_argument("--steps", type=int, default=20000, help="optimiser steps per point")
    ap.add_argument("--e0", nargs="+", choices=("fit", "teacher"), default=["fit"])
    ap.add_argument("--work", default="runs/learning_curve")
    ap.add_argument("--from-log", default=None, help="a run folder: validation MAE vs steps")
    ap.add_argument("--out", default="docs/benchmarks/accuracy/learning_curve")
    ap.add_argument("--override", action="append", default=[], help="extra key=value")
    ap.add_argument("--reuse-points", action="store_true",
                    help="keep the data-size points of OUT/results.json (e.g. when only the "
                         "steps curve of a longer run is added)")
    args = ap.parse_args(argv)
    if args.steps < 1:
        ap.error(f"--steps must be >= 1, got {args.steps}")
    if any(n < 1 for n in args.frames):
        ap.error("--frames must be positive")
    if not args.frames and not args.from_log:
        ap.error("give --frames (data-size curve) and/or --from-log RUN (steps curve)")
    work = Path(args.work)
    points = []
    if args.reuse_points:
        earlier = Path(args.out) / "results.json"
        if not earlier.is_file():
            ap.error(f"--reuse-points: {earlier} not found")
        points = json.loads(earlier.read_text())["points"]
    for n in args.frames:
        k, got = shards_for_frames(args.data, n)
        if got < n:
            print(f"--frames {n}: only {got} training frames are labelled; using all {k} "
                  "shards", flush=True)
        for e0 in args.e0:
            points.append(_train_point(args, work, k, e0))
            report(points, [], Path(args.out), " ".join(["python -m facet.bench.learning_curve",
                                                          *(argv or sys.argv[1:])]))
    val_log = read_validation_log(args.from_log) if args.from_log else []
    out = report(points, val_log, Path(args.out),
                 " ".join(["python -m facet.bench.learning_curve", *(argv or sys.argv[1:])]))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
