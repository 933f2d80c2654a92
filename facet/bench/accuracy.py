"""Accuracy at equal wall-clock training time: Facet (`facet train`) against MACE's trainer.

    python scripts/bench_accuracy.py --data data/distill --budget-minutes 120
    python scripts/bench_accuracy.py --data data/sample/mptrj_sample.json --quick   # smoke run
    python -m facet.bench.accuracy ...          # the same, from an installed Facet

Issue 7, scope 3. Steps:

1. Split. A distillation directory (``mptrj_distill.json.gz`` + ``splits.json``, see
   docs/datasets.md) is split by its own material lists (train / val / test); every material of
   the data must be in exactly one list and every listed material in the data, or the run stops
   naming it. A single MPTrj JSON or extxyz file (the smoke fallback) is split with a seeded
   permutation of frames (``--split-by frame``) or materials (80/10/10).
2. The three splits are written once as extxyz (exact floats, MACE's ``REF_*`` keys); both
   trainers read the same files.
3. Facet: ``facet train`` with ``--facet-config`` (default the quickstart recipe with the full
   facet-s preset), ``data.train``/``data.val`` pointed at the splits. MACE:
   :mod:`facet.bench.peers.mace_train` at the MACE-MP-0 size ``--mace-size`` (float32).
   Each runs alone (one thread, ``OMP_NUM_THREADS=1``, XLA single-threaded), and is stopped when
   ``--budget-minutes`` of wall-clock time have passed since its launch (compilation and data
   loading included); both keep the checkpoint of their best validation loss (EMA weights).
4. Both models predict the held-out test split; the same function (:func:`score`, the
   definitions of :mod:`facet.train.loss`) gives energy-per-atom MAE (meV/atom), force-component
   MAE (meV/A) and stress-component MAE (meV/A^3). Parameters, training wall time, CPU seconds,
   steps and epochs are recorded.

Outputs (``--out``, default ``docs/benchmarks/accuracy`` or ``docs/benchmarks/quick/accuracy``
with ``--quick``): ``accuracy.json`` and ``README.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .peers import mace_train
from .train_peers import THREAD_ENV, read_frames, scrub, write_mace_extxyz

#: The quickstart recipe shipped with the package (``facet/train/configs/quickstart.yaml``).
DEFAULT_FACET_CONFIG = str(Path(__file__).resolve().parents[1] / "train/configs/quickstart.yaml")


# ------------------------------------------------------------------ splits
def load_splits(data: str, *, split_by: str = "frame", seed: int = 0) -> dict[str, list]:
    """``{"train": frames, "val": frames, "test": frames}`` (see the module docstring)."""
    p = Path(data)
    if p.is_dir():
        gz, splits_file = p / "mptrj_distill.json.gz", p / "splits.json"
        for f in (gz, splits_file):
            if not f.exists():
                raise FileNotFoundError(f"{f} not found: a distillation directory holds "
                                        "mptrj_distill.json.gz and splits.json")
        frames = read_frames(str(gz))
        splits = json.loads(splits_file.read_text())
        return split_by_lists(frames, splits, source=str(splits_file))
    frames = read_frames(data)
    rng = np.random.default_rng(seed)
    if split_by == "frame":
        order = rng.permutation(len(frames))
        n_val, n_test = max(1, len(frames) // 10), max(1, len(frames) // 10)
        parts = {"test": order[:n_test], "val": order[n_test:n_test + n_val],
                 "train": order[n_test + n_val:]}
        return {k: [frames[i] for i in sorted(v)] for k, v in parts.items()}
    mats = sorted({f.material_id for f in frames})
    order = [mats[i] for i in rng.permutation(len(mats))]
    k = max(1, len(mats) // 10)
    lists = {"test": order[:k], "val": order[k:2 * k], "train": order[2 * k:]}
    return split_by_lists(frames, lists, source=f"seeded material split of {data}")


def split_by_lists(frames, splits: dict[str, list[str]], *, source: str) -> dict[str, list]:
    """Frames grouped by the material-id lists ``splits`` (keys train, val, test)."""
    missing_keys = [k for k in ("train", "val", "test") if k not in splits]
    if missing_keys:
        raise ValueError(f"{source} has no {missing_keys} list(s); keys are {sorted(splits)}")
    where: dict[str, str] = {}
    for name in ("train", "val", "test"):
        for mid in splits[name]:
            if mid in where:
                raise ValueError(f"{source}: material {mid} is in both {where[mid]} and {name}")
            where[mid] = name
    out: dict[str, list] = {"train": [], "val": [], "test": []}
    for f in frames:
        if f.material_id not in where:
            raise ValueError(f"{source}: material {f.material_id} (frame {f.frame_id}) is in no "
                             "split")
        out[where[f.material_id]].append(f)
    seen = {f.material_id for f in frames}
    absent = sorted(set(where) - seen)
    if absent:
        raise ValueError(f"{source} lists {len(absent)} material(s) absent from the data, e.g. "
                         f"{absent[:3]}")
    return out


def stride_by_material(frames, k: int) -> list:
    """Every ``k``-th frame (file order) of each material: fewer, less correlated training
    structures with every material and element kept (frames of one material are strains,
    rattles and MD snapshots of one crystal)."""
    seen: dict[str, int] = {}
    out = []
    for f in frames:
        i = seen.get(f.material_id, 0)
        seen[f.material_id] = i + 1
        if i % k == 0:
            out.append(f)
    return out


# ------------------------------------------------------------------ scoring
def score(frames, pred: list[dict]) -> dict[str, float]:
    """MAE/RMSE of predictions against the frames' labels, :mod:`facet.train.loss` definitions.

    energy: ``|E_pred - E_ref| / n_atoms`` per structure (meV/atom); forces: per Cartesian
    component of every atom (meV/A); stress: per component of the 3 x 3 tensor, ASE sign
    (meV/A^3). ``pred[i]`` holds ``energy`` (eV), ``forces`` (n x 3), ``stress`` (3 x 3).
    """
    if len(pred) != len(frames):
        raise ValueError(f"{len(pred)} predictions for {len(frames)} structures")
    errs: dict[str, list[np.ndarray]] = {"energy": [], "forces": [], "stress": []}
    for f, p in zip(frames, pred, strict=True):
        if f.energy is not None:
            errs["energy"].append(np.atleast_1d((p["energy"] - f.energy) / f.n_atoms))
        if f.forces is not None:
            errs["forces"].append((np.asarray(p["forces"]) - f.forces).reshape(-1))
        if f.stress is not None:
            errs["stress"].append((np.asarray(p["stress"]).reshape(3, 3) - f.stress).reshape(-1))
    out = {}
    for k, v in errs.items():
        if v:
            e = np.concatenate(v)
            out[f"{k}_mae"] = 1e3 * float(np.mean(np.abs(e)))
            out[f"{k}_rmse"] = 1e3 * float(np.sqrt(np.mean(e * e)))
            out[f"{k}_count"] = float(e.size)
    return out


# ------------------------------------------------------------------ trainers
def _run_with_budget(cmd: list[str], *, budget_s: float, log: Path, env: dict) -> dict:
    """Run ``cmd``; stop it (SIGTERM, then SIGKILL) ``budget_s`` after launch."""
    t0 = time.perf_counter()
    stopped = False
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
        cpu = None
        while proc.poll() is None:
            time.sleep(0.5)
            cpu = mace_train._cpu_seconds(proc.pid) or cpu  # last reading before exit
            if time.perf_counter() - t0 > budget_s:
                stopped = True
                mace_train.stop(proc)
    wall = time.perf_counter() - t0
    if proc.returncode != 0 and not stopped:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        raise RuntimeError(f"{cmd[0]} failed (exit {proc.returncode}); see {log}:\n{tail}")
    return {"wall_s": wall, "cpu_s": cpu, "stopped_at_budget": stopped,
            "returncode": proc.returncode}


def train_facet(paths: dict, work: Path, *, config: str, budget_s: float, epochs: int,
                overrides: list[str]) -> dict:
    from facet.nn.presets import count_parameters
    from facet.train.model_io import load_model

    run_dir = work / "facet_run"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    cmd = ["facet", "train", "--config", config, f"data.train=[{paths['train']}]",
           f"data.val=[{paths['val']}]", f"run.out_dir={run_dir}", f"run.epochs={epochs}",
           "run.progress=false", *overrides]
    env = dict(os.environ, **THREAD_ENV)
    row = {"trainer": "facet", "command": " ".join(cmd)}
    row.update(_run_with_budget(cmd, budget_s=budget_s, log=work / "facet_train.log", env=env))
    model, cfg, ckpt = load_model(run_dir, report=lambda *a, **k: None)
    row.update({"model": cfg.model.preset, "params": count_parameters(model),
                "checkpoint": str(ckpt), "model_overrides": dict(cfg.model.overrides)})
    row.update(_facet_progress(run_dir / "log.csv"))
    return row


def _facet_progress(log_csv: Path) -> dict:
    import csv

    if not log_csv.exists():
        return {}
    with open(log_csv) as fh:
        rows = list(csv.DictReader(fh))
    steps = [int(r["step"]) for r in rows if r.get("step")]
    return {"steps": max(steps) if steps else 0,
            "epochs_run": max((float(r["epoch"]) for r in rows if r.get("epoch")), default=None)}


def predict_facet(ckpt_dir: str, test_file: str, frames) -> list[dict]:
    """Per-structure Facet predictions (EMA weights of the best checkpoint) on ``test_file``."""
    from facet.train.data import read_graphs
    from facet.train.evaluate import predict_dataset
    from facet.train.model_io import load_model

    model, cfg, _ = load_model(ckpt_dir, report=lambda *a, **k: None)
    cutoff = float(cfg.data.cutoff if cfg.data.cutoff is not None else model.cutoff)
    graphs = read_graphs([test_file], cutoff, cfg.data.energy_label)
    dtype = np.float32 if cfg.model.dtype == "float32" else np.float64
    p = predict_dataset(model, graphs, (cfg.data.max_nodes, cfg.data.max_edges,
                                        cfg.data.max_graphs), dtype=dtype)
    out, a = [], 0
    for i, f in enumerate(frames):
        n = int(p["n_atoms"][i])
        if n != f.n_atoms:
            raise RuntimeError(f"Facet predictions out of order at structure {i} ({f.frame_id})")
        out.append({"energy": float(p["energy"][i]), "forces": p["forces"][a:a + n],
                    "stress": p["stress"][i]})
        a += n
    return out


def train_mace(paths: dict, work: Path, *, size: str, budget_s: float, epochs: int,
               batch_size: int, venv: str | None, elements: str = "data") -> dict:
    mwork = work / "mace_run"
    if mwork.exists():
        shutil.rmtree(mwork)
    run = mace_train.MaceRun(train_file=paths["train"], valid_file=paths["val"],
                             work_dir=str(mwork), size=size, batch_size=batch_size,
                             epochs=epochs, budget_s=budget_s, eval_interval=1, ema=True,
                             atomic_numbers=mace_train.MPTRJ_Z if elements == "mptrj" else None)
    row = mace_train.train(run, venv=venv, threads=1)
    if row.get("status") == "ok" and row.get("model_file"):
        row["params"] = mace_train.count_model_parameters(row["model_file"], venv=venv)
    return row


def predict_mace(model_file: str, test_file: str, work: Path, venv: str | None) -> list[dict]:
    exe, why = mace_train.find_mace(venv)
    if exe is None:
        raise RuntimeError(why)
    out = work / "mace_test_predictions.json"
    subprocess.run([str(Path(exe).parent / "python"), mace_train.__file__,
                    "predict", "--model", model_file, "--data", test_file, "--out", str(out)],
                   check=True, env=dict(os.environ, **THREAD_ENV,
                                        TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD="1"))
    return json.loads(out.read_text())


# ------------------------------------------------------------------ report
def write_report(result: dict, out_dir: Path, work: str | None = None) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    result = scrub(result, work)
    (out_dir / "accuracy.json").write_text(json.dumps(result, indent=1, default=str))
    s = result["splits"]
    lines = [
        "# Accuracy at equal wall-clock training time: Facet vs MACE", "",
        f"Generated by `{result['command']}` on {result['date']}. Method: docstring of "
        "`facet/bench/accuracy.py`.", "",
        f"Data: {result['data']} - train {s['train']}, val {s['val']}, test {s['test']} "
        f"structures. Budget {result['budget_minutes']:g} min of wall clock per trainer "
        "(from launch; compilation/data loading included), one thread each, float32"
        + (", both trainers at the same time (same machine load)" if result.get("parallel")
           else "") + ".",
        *([f"Training subset: every {result['train_stride']}th frame of each training material "
           f"({s['train']} of {result['train_structures_before_stride']} structures; every "
           "material and element kept)."] if result.get("train_stride", 1) > 1 else []), "",
        "| trainer | model | params | train wall (min) | stopped at budget | steps | "
        "energy MAE (meV/atom) | force MAE (meV/A) | stress MAE (meV/A^3) |",
        "|---" * 9 + "|"]
    for r in result["trainers"]:
        m = r.get("test", {})
        over = r.get("model_overrides")
        model = f"{r.get('model')} {over}" if over else r.get("model")
        lines.append(
            f"| {r['trainer']} | {model} | {r.get('params')} | "
            f"{r.get('wall_s', 0) / 60:.1f} | {r.get('stopped_at_budget')} | "
            f"{r.get('steps', r.get('steps_total'))} | "
            + " | ".join(f"{m[k]:.1f}" if k in m else r.get("status", "n/a")
                         for k in ("energy_mae", "forces_mae", "stress_mae")) + " |")
    if result.get("note"):
        lines += ["", result["note"]]
    (out_dir / "README.md").write_text("\n".join(lines) + "\n")


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="distillation directory or one data file")
    ap.add_argument("--budget-minutes", type=float)
    ap.add_argument("--quick", action="store_true", help="smoke run: 3 min each, quick/ output")
    ap.add_argument("--split-by", choices=["frame", "material"], default="frame")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--facet-config", default=DEFAULT_FACET_CONFIG)
    ap.add_argument("--facet-epochs", type=int, default=1000,
                    help="sets the length of Facet's LR schedule; the budget stops the run")
    ap.add_argument("--facet-override", action="append", default=["model.overrides={}"],
                    help="extra key=value for facet train (default: the full preset)")
    ap.add_argument("--mace-size", choices=sorted(mace_train.SIZES), default="small")
    ap.add_argument("--mace-epochs", type=int, default=1000)
    ap.add_argument("--mace-elements", choices=["data", "mptrj"], default="data",
                    help="MACE's element embedding: the training file's elements, or MPTrj's 89 "
                         "(MACE-MP-0's; Facet always embeds Z 1-118)")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--venv")
    ap.add_argument("--parallel", action="store_true",
                    help="train Facet and MACE at the same time (one thread each), so that both "
                         "see the same machine load; default: one after the other")
    ap.add_argument("--train-stride", type=int, default=1,
                    help="train both models on every k-th frame of each training material "
                         "(same subset for both; val and test unchanged)")
    ap.add_argument("--work")
    ap.add_argument("--out")
    return ap


def _write_splits(args, work: Path) -> tuple[dict, dict, int]:
    """``(splits, paths, n_train_all)``: the train/val/test frames (the training split strided
    by ``--train-stride``), the extxyz file each is written to in ``work`` (MACE's layout, read by
    both trainers) and the training count before striding."""
    splits = load_splits(args.data, split_by=args.split_by, seed=args.seed)
    n_train_all = len(splits["train"])
    if args.train_stride > 1:
        splits["train"] = stride_by_material(splits["train"], args.train_stride)
        print(f"train: every {args.train_stride}th frame of each material: "
              f"{len(splits['train'])} of {n_train_all} structures", flush=True)
    paths = {}
    for name, frames in splits.items():
        if not frames:
            raise ValueError(f"the {name} split of {args.data} is empty")
        paths[name] = str(work / f"{name}.extxyz")
        write_mace_extxyz(frames, paths[name])
    print({k: len(v) for k, v in splits.items()}, "->", work, flush=True)
    return splits, paths, n_train_all


def _train_both(args, paths: dict, work: Path, splits: dict, budget_s: float) -> list[dict]:
    """Train Facet and MACE within ``budget_s`` each (at the same time with ``--parallel``) and
    score both on the test split; one row per trainer."""
    trainers = []

    def run_facet():
        return train_facet(paths, work, config=args.facet_config, budget_s=budget_s,
                           epochs=args.facet_epochs, overrides=args.facet_override)

    def run_mace():
        return train_mace(paths, work, size=args.mace_size, budget_s=budget_s,
                          epochs=args.mace_epochs, batch_size=args.batch_size, venv=args.venv,
                          elements=args.mace_elements)

    if args.parallel:  # both at once, one thread each: the same machine load for both
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(2) as pool:
            f_fut, m_fut = pool.submit(run_facet), pool.submit(run_mace)
            frow, mrow = f_fut.result(), m_fut.result()
    else:
        frow = run_facet()
    frow["test"] = score(splits["test"], predict_facet(frow["checkpoint"], paths["test"],
                                                       splits["test"]))
    trainers.append(frow)
    print("facet", frow["test"], flush=True)
    if not args.parallel:
        mrow = run_mace()
    if mrow.get("status") == "ok" and mrow.get("model_file"):
        mrow["test"] = score(splits["test"], predict_mace(mrow["model_file"], paths["test"],
                                                          work, args.venv))
        print("mace", mrow["test"], flush=True)
    trainers.append(mrow)
    return trainers


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--rewrite"]:  # regenerate README.md from an accuracy.json
        path = Path(argv[1])
        write_report(json.loads(path.read_text()), path.parent)
        return 0
    ap = _parser()
    args = ap.parse_args(argv)
    budget_min = args.budget_minutes or (3.0 if args.quick else None)
    if budget_min is None:
        ap.error("--budget-minutes is required (or --quick)")
    out_dir = Path(args.out or ("docs/benchmarks/quick/accuracy" if args.quick
                                else "docs/benchmarks/accuracy"))
    work = Path(args.work or tempfile.mkdtemp(prefix="facet_bench_accuracy_"))
    work.mkdir(parents=True, exist_ok=True)
    splits, paths, n_train_all = _write_splits(args, work)
    trainers = _train_both(args, paths, work, splits, 60.0 * budget_min)
    result = {"command": "python scripts/bench_accuracy.py " + " ".join(argv),
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "data": args.data,
              "budget_minutes": budget_min, "parallel": bool(args.parallel),
              "splits": {k: len(v) for k, v in splits.items()},
              "train_stride": args.train_stride, "train_structures_before_stride": n_train_all,
              "trainers": trainers,
              "note": ("Smoke run: minutes of training on a shared 2-core machine; the numbers "
                       "show that the harness works, not which model is more accurate.")
              if args.quick else ""}
    write_report(result, out_dir, str(work))
    print(f"wrote {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
