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
from .time_to_accuracy_report import (
    compare,
    facet_curve,
    plot,
    report,
    time_to_reach,
    write_readme,
)
from .train_peers import THREAD_ENV, read_frames, write_mace_extxyz

__all__ = [
    # steps 1-3 and the command line (this module)
    "SPLITS", "SPLIT_SUFFIXES", "eval_mace", "load_split_files", "main", "prepare",
    "read_mace_predictions", "read_snapshot_index", "split_file_paths", "train_mace",
    # step 4 (facet.bench.time_to_accuracy_report, re-exported)
    "compare", "facet_curve", "plot", "report", "time_to_reach", "write_readme",
]

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
