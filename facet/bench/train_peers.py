"""Training throughput, Facet's trainer and MACE's own trainer side by side on the same data.

    python scripts/bench_train_peers.py --data data/sample/mptrj_sample.json [--quick]
    python -m facet.bench.train_peers ...            # the same, from an installed Facet

Writes ``docs/benchmarks/train/`` (``--quick``: ``docs/benchmarks/quick/train/``):
``train_peers.json`` (every block's row), ``README.md`` (table, ratios, method) and
``train_peers.png`` (structures/s, atoms/s, parameters).

Method:

* The same structures for both trainers: ``--max-structures`` frames drawn with a seeded
  permutation from ``--data`` are written once to extxyz (exact ``repr`` floats, MACE's
  ``REF_energy``/``REF_forces``/``REF_stress`` keys, :func:`facet.data.extxyz.write_extxyz`); Facet
  reads that file, MACE trains on it (its required validation file is the first
  ``--valid-structures`` of them; validation is not timed).
* Same model sizes: facet-s against MACE-MP-0 "small" (128x0e, max_L 0), facet-m against
  "medium" (128x0e+128x1o, max_L 1); both float32; about the same batch: Facet packs up to
  8 structures (budget 129 nodes / 4096 edges / 9 graphs incl. the padding slot: ``--budget``;
  the edge budget fits the data, 8 structures of the sample have ~3,400 edges, so little of
  Facet's fixed shape is padding), MACE takes ``--batch-size`` 8.
* Facet: :func:`facet.bench.train_throughput.trainer_rows` (the real ``facet train`` step: forces
  and stress by autodiff, AdamW, EMA; compilation excluded) in a fresh process per block.
  MACE: ``mace_run_train`` (:mod:`facet.bench.peers.mace_train`), its per-step times from its own
  ``results/*_train.txt``, the first two steps dropped.
* One thread each (``OMP_NUM_THREADS=1``; XLA ``intra_op_parallelism_threads=1`` and no Eigen
  thread pool for JAX), recorded in the rows. Blocks are interleaved
  ``facet-s, mace-small, facet-m, mace-medium`` for ``--rounds`` rounds so that load drifts on the
  shared machine hit both trainers alike; we report the median over blocks, the min-max spread
  and the Facet/MACE ratio.
* Per CPU second: on an over-subscribed machine a process waits for a core; each row also gives
  the fraction of a core the trainer got while timing (``cpu_share``: process CPU seconds over
  wall seconds of the timed window) and the rates divided by it (``*_per_cpu_s``).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import train_throughput
from .peers import mace_train

#: The folder holding the ``facet`` package (a checkout's root for an editable install): paths
#: under it are written relative to it in the reports (:func:`scrub`).
PACKAGE_ROOT = Path(__file__).resolve().parents[2]

#: Facet preset -> the MACE-MP-0 size it is compared with.
PAIRS = {"facet-s": "small", "facet-m": "medium"}
THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
              "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"}


# ------------------------------------------------------------------ data conversion
def read_frames(path: str, energy_label: str = "uncorrected_total_energy") -> list:
    """Validated frames of an MPTrj JSON (``.json`` or ``.json.gz``) or extxyz file."""
    from facet.data.extxyz import iter_extxyz
    from facet.data.mptrj import iter_mptrj

    p = Path(path)
    if p.name.endswith(".json.gz"):
        with tempfile.TemporaryDirectory() as tmp:
            plain = Path(tmp) / p.name[:-3]
            with gzip.open(p, "rb") as src, open(plain, "wb") as dst:
                shutil.copyfileobj(src, dst)
            return list(iter_mptrj(plain, label=energy_label))
    if p.suffix == ".json":
        return list(iter_mptrj(p, label=energy_label))
    if p.suffix in (".extxyz", ".xyz"):
        return list(iter_extxyz(p))
    raise ValueError(f"don't know how to read {path}: expected .json, .json.gz, .extxyz or .xyz")


def write_mace_extxyz(frames, path: str | Path) -> int:
    """Frames to extxyz with MACE's ``REF_*`` keys; refuses frames without energy or forces."""
    from facet.data.extxyz import write_extxyz

    for f in frames:
        missing = [k for k in ("energy", "forces") if getattr(f, k) is None]
        if missing:
            raise ValueError(f"frame {f.frame_id} of material {f.material_id} ({f.source}) has "
                             f"no {missing}: MACE needs energy and forces for every frame")
    return write_extxyz(path, frames, prefix="REF_")


def prepare_data(data: list[str], out_dir: Path, *, max_structures: int, valid_structures: int,
                 seed: int = 0) -> dict:
    """Draw the benchmark structures and write ``bench.extxyz`` and ``valid.extxyz``."""
    import numpy as np

    frames = [f for p in data for f in read_frames(p)]
    order = np.random.default_rng(seed).permutation(len(frames))[:max_structures]
    chosen = [frames[i] for i in sorted(order)]
    out_dir.mkdir(parents=True, exist_ok=True)
    bench, valid = out_dir / "bench.extxyz", out_dir / "valid.extxyz"
    write_mace_extxyz(chosen, bench)
    write_mace_extxyz(chosen[:valid_structures], valid)
    atoms = [f.n_atoms for f in chosen]
    return {"bench": str(bench), "valid": str(valid), "structures": len(chosen),
            "source_frames": len(frames), "mean_atoms": sum(atoms) / len(atoms),
            "max_atoms": max(atoms), "seed": seed, "sources": list(data)}


# ------------------------------------------------------------------ the two trainers
def facet_worker(data: str, preset: str, steps: int, repeats: int, warmup: int,
                 overrides: dict | None = None, budget=(129, 4096, 9)) -> dict:
    """One Facet block in this process: :func:`train_throughput.trainer_rows` + its CPU share.

    ``trainer_rows`` reads ``time.perf_counter`` at the start and end of every timed repeat; a
    clock that also notes ``time.process_time`` at those calls gives the CPU seconds of the same
    windows without touching the benchmark's own code.
    """
    class _Clock:
        def __init__(self):
            self.marks: list[tuple[float, float]] = []

        def perf_counter(self) -> float:
            w = time.perf_counter()
            self.marks.append((w, time.process_time()))
            return w

        def __getattr__(self, name):
            return getattr(time, name)

    clock = _Clock()
    train_throughput.time = clock
    (row,) = train_throughput.trainer_rows([data], [preset], steps=steps, repeats=repeats,
                                      warmup=warmup, overrides=overrides, budget=tuple(budget))
    timed = clock.marks[2:]  # [warm-up start, warm-up end], then (start, end) per repeat
    wall = sum(timed[i + 1][0] - timed[i][0] for i in range(0, len(timed) - 1, 2))
    cpu = sum(timed[i + 1][1] - timed[i][1] for i in range(0, len(timed) - 1, 2))
    share = cpu / wall if wall > 0 and cpu > 0 else None
    import resource

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    row.update({"status": "ok", "threads": 1, "cpu_share": share, "peak_rss_mb": peak_mb,
                "thread_env": {k: os.environ.get(k) for k in THREAD_ENV}})
    if share:
        for k in ("structures_per_s", "atoms_per_s"):
            row[k.replace("_per_s", "_per_cpu_s")] = row[k] / share
    return row


def facet_block(data: str, preset: str, *, steps: int, repeats: int, warmup: int,
                overrides: dict | None = None, budget=(129, 4096, 9)) -> dict:
    """Run :func:`facet_worker` in a fresh single-threaded process and return its row."""
    env = dict(os.environ, **THREAD_ENV)
    cmd = [sys.executable, "-m", "facet.bench.train_peers", "--facet-worker", data, preset,
           str(steps), str(repeats), str(warmup), json.dumps(overrides or {}),
           ",".join(str(int(b)) for b in budget)]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if res.returncode != 0:
        raise RuntimeError(f"Facet block {preset} failed (exit {res.returncode}):\n"
                           f"{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def mace_block(prep: dict, size: str, *, work: Path, epochs: int, batch_size: int,
               venv: str | None) -> dict:
    """One MACE block: a fresh ``mace_run_train`` on the benchmark file; its row."""
    if work.exists():
        shutil.rmtree(work)
    run = mace_train.MaceRun(train_file=prep["bench"], valid_file=prep["valid"],
                             work_dir=str(work), size=size, batch_size=batch_size,
                             epochs=epochs, eval_interval=1000, ema=True)
    row = mace_train.train(run, venv=venv, threads=1)
    if row.get("status") == "ok" and row.get("model_file"):
        row["params"] = mace_train.count_model_parameters(row["model_file"], venv=venv)
    return row


# ------------------------------------------------------------------ summary and report
def summarise(rows: list[dict]) -> list[dict]:
    """Per model: medians over blocks, min-max spread, and Facet/MACE ratios for each pair."""
    out = []
    by_model: dict[str, list[dict]] = {}
    for r in rows:
        by_model.setdefault(r["model"], []).append(r)
    for model, rs in by_model.items():
        ok = [r for r in rs if r.get("status") == "ok" and "structures_per_s" in r]
        s = {"trainer": rs[0]["trainer"], "model": model, "blocks": len(ok),
             "status": "ok" if ok else rs[0].get("status", "failed")}
        if ok:
            s["params"] = ok[0].get("params")
            if ok[0].get("overrides"):
                s["overrides"] = ok[0]["overrides"]
            rss = [r["peak_rss_mb"] for r in ok if r.get("peak_rss_mb")]
            if rss:
                s["peak_rss_mb"] = max(rss)
            for k in ("structures_per_s", "atoms_per_s", "structures_per_cpu_s",
                      "atoms_per_cpu_s", "cpu_share"):
                vals = [r[k] for r in ok if r.get(k) is not None]
                if vals:  # spread: over blocks and, where a row has one, within it
                    s[k] = statistics.median(vals)
                    s[k + "_min"] = min(r.get(k + "_min", r[k]) for r in ok if r.get(k))
                    s[k + "_max"] = max(r.get(k + "_max", r[k]) for r in ok if r.get(k))
        out.append(s)
    index = {s["model"]: s for s in out}
    for preset, size in PAIRS.items():
        f, m = index.get(preset), index.get(f"mace-{size}")
        if not f or not m or f["status"] != "ok" or m["status"] != "ok":
            continue
        for k in ("structures_per_s", "atoms_per_s", "structures_per_cpu_s", "atoms_per_cpu_s"):
            if k in f and k in m:
                f[f"ratio_vs_mace_{k}"] = f[k] / m[k]
        f["mace_params"] = m.get("params")
        if f.get("params") and m.get("params"):
            f["params_ratio_vs_mace"] = f["params"] / m["params"]
    return out


def scrub(obj, work: str | None = None):
    """``obj`` with this machine's paths made neutral (the scratch directory becomes
    ``<work>``, the repository ``.``, the home directory ``~``, the folder after ``--venv``
    ``<mace venv>``), for files committed to docs/."""
    import re

    if isinstance(obj, dict):
        return {k: scrub(v, work) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [scrub(v, work) for v in obj]
    if not isinstance(obj, str):
        return obj
    if work:
        obj = obj.replace(str(work), "<work>")
    obj = obj.replace(str(PACKAGE_ROOT), ".")
    obj = re.sub(r"/tmp/[^/\s\"']+", "<work>", obj)
    obj = re.sub(r"--venv[ =]\S+", "--venv <mace venv>", obj)
    return obj.replace(os.path.expanduser("~"), "~")


def _fmt(x, spec=".2f"):
    return "n/a" if x is None else format(x, spec)


def write_report(rows, summary, prep, out_dir: Path, command: str, elapsed_s: float,
                 work: str | None = None, note: str = "") -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    rows, summary, prep = scrub(rows, work), scrub(summary, work), scrub(prep, work)
    command = scrub(command, work)
    (out_dir / "train_peers.json").write_text(json.dumps(
        {"command": command, "data": prep, "blocks": rows, "summary": summary,
         "elapsed_s": elapsed_s, "note": note}, indent=1))
    lines = [
        "# Training throughput: Facet's trainer and MACE's `mace_run_train`, same data",
        "", f"Generated by `{command}` ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{elapsed_s / 60:.0f} min). Method: docstring of `facet/bench/train_peers.py`.", "",
        f"Data: {prep['structures']} structures drawn (seed {prep['seed']}) from "
        f"{', '.join(prep['sources'])} ({prep['source_frames']} frames), mean "
        f"{prep['mean_atoms']:.2f} atoms, max {prep['max_atoms']}; one thread per trainer; "
        "float32; about 8 structures per step for both.", "",
        "| trainer | model | params | structures/s (min-max) | atoms/s | cpu share | "
        "structures per CPU-s | atoms per CPU-s | peak RSS (MB) | blocks |", "|---" * 10 + "|"]
    for s in summary:
        if s["status"] != "ok":
            lines.append(f"| {s['trainer']} | {s['model']} | | {s['status']} | | | | | | 0 |")
            continue
        over = ", ".join(f"{k}={v}" for k, v in (s.get("overrides") or {}).items())
        lines.append(
            f"| {s['trainer']} | {s['model']}{f' ({over})' if over else ''} | "
            f"{s.get('params') or 'n/a'} | "
            f"{_fmt(s.get('structures_per_s'))} ({_fmt(s.get('structures_per_s_min'))}-"
            f"{_fmt(s.get('structures_per_s_max'))}) | {_fmt(s.get('atoms_per_s'), '.1f')} | "
            f"{_fmt(s.get('cpu_share'))} | {_fmt(s.get('structures_per_cpu_s'))} | "
            f"{_fmt(s.get('atoms_per_cpu_s'), '.1f')} | {_fmt(s.get('peak_rss_mb'), '.0f')} | "
            f"{s['blocks']} |")
    lines += ["", "## Facet / MACE", ""]
    for s in summary:
        if "ratio_vs_mace_structures_per_s" not in s:
            continue
        size = PAIRS[s["model"]]
        r_w, r_c = s["ratio_vs_mace_structures_per_s"], s.get("ratio_vs_mace_structures_per_cpu_s")
        verdict = "faster" if (r_c or r_w) > 1 else "slower"
        lines.append(
            f"- {s['model']} vs MACE {size}: {r_w:.2f}x the structures/s (wall clock), "
            f"{_fmt(r_c)}x per CPU second: Facet is **{verdict}** at this size; parameters "
            f"{s.get('params')} vs {s.get('mace_params')} "
            f"({_fmt(s.get('params_ratio_vs_mace'))}x).")
    if note:
        lines += ["", "Note: " + note]
    lines += ["", "Parameters: MACE's element embedding covers only the elements of the "
              "benchmark file (MACE infers them from the data), Facet's presets embed Z 1-118; "
              "the count changes neither trainer's speed noticeably.",
              "", "Each block is one fresh process; per-block rows (versions, commands, step "
              "counts, spreads) are in `train_peers.json`. The machine is shared (2 cores, many "
              "jobs): wall-clock rates depend on the load at the time, the per-CPU-second rates "
              "much less; the interleaving exposes both trainers to the same load."]
    (out_dir / "README.md").write_text("\n".join(lines) + "\n")
    plot(summary, out_dir / "train_peers.png")


def plot(summary, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [s for s in summary if s["status"] == "ok" and "structures_per_s" in s]
    names = [s["model"] for s in ok]
    colours = ["tab:blue" if s["trainer"] == "facet" else "tab:orange" for s in ok]
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    for ax, key, title in ((axes[0], "structures_per_cpu_s", "structures per CPU second"),
                           (axes[1], "atoms_per_cpu_s", "atoms per CPU second")):
        vals = [s.get(key) or 0.0 for s in ok]
        lo = [v - (s.get(key + "_min") or v) for v, s in zip(vals, ok, strict=True)]
        hi = [(s.get(key + "_max") or v) - v for v, s in zip(vals, ok, strict=True)]
        ax.bar(names, vals, color=colours, yerr=[lo, hi], capsize=4)
        ax.set_title(title + " (median, min-max)")
    axes[2].bar(names, [s.get("params") or 0 for s in ok], color=colours)
    axes[2].set_title("parameters")
    for ax in axes:
        ax.tick_params(axis="x", rotation=30)
    fig.suptitle("Training throughput, one thread each: Facet (blue) vs mace_run_train (orange)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ------------------------------------------------------------------ main
def run(args) -> int:
    t_start = time.perf_counter()
    out_dir = Path(args.out or ("docs/benchmarks/quick/train" if args.quick
                                else "docs/benchmarks/train"))
    work = Path(args.work or tempfile.mkdtemp(prefix="facet_bench_train_peers_"))
    prep = prepare_data(args.data, work / "data", max_structures=args.max_structures,
                        valid_structures=args.valid_structures, seed=args.seed)
    print(f"data: {prep['structures']} structures -> {prep['bench']}", flush=True)
    rows = []
    command = ("python scripts/bench_train_peers.py " + " ".join(args.argv)).strip()

    def report():  # after every block, so that an interrupted run still leaves its blocks
        write_report(rows, summarise(rows), prep, out_dir, command, time.perf_counter() - t_start,
                     str(work), args.note)

    for rnd in range(args.rounds):
        for preset in args.presets:
            size = PAIRS[preset]
            try:
                row = facet_block(prep["bench"], preset, steps=args.steps, repeats=args.repeats,
                                  warmup=args.warmup, budget=args.budget)
            except RuntimeError as e:  # recorded, not dropped: e.g. killed for memory
                row = {"trainer": "facet", "model": preset,
                       "status": "failed: " + str(e).splitlines()[0]}
            row["round"] = rnd
            rows.append(row)
            report()
            print(f"round {rnd} {preset}: {_fmt(row.get('structures_per_s'))} structures/s "
                  f"(cpu share {_fmt(row.get('cpu_share'))})", flush=True)
            if args.no_mace:
                continue
            row = mace_block(prep, size, work=work / f"mace_{size}_{rnd}", epochs=args.epochs,
                             batch_size=args.batch_size, venv=args.venv)
            row["round"] = rnd
            rows.append(row)
            report()
            print(f"round {rnd} mace-{size}: "
                  f"{_fmt(row.get('structures_per_s'))} structures/s ({row['status']})",
                  flush=True)
    report()
    print(f"wrote {out_dir}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--facet-worker"]:
        data, preset, steps, repeats, warmup = argv[1:6]
        overrides = json.loads(argv[6]) if len(argv) > 6 else None
        budget = tuple(int(b) for b in argv[7].split(",")) if len(argv) > 7 else (129, 4096, 9)
        row = facet_worker(data, preset, int(steps), int(repeats), int(warmup), overrides, budget)
        print(json.dumps(row))
        return 0
    if argv[:1] == ["--rewrite"]:  # regenerate README/plot from a train_peers.json
        path = Path(argv[1])
        d = json.loads(path.read_text())
        write_report(d["blocks"], summarise(d["blocks"]), d["data"], path.parent, d["command"],
                     d["elapsed_s"], note=d.get("note", ""))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", nargs="+", default=["data/sample/mptrj_sample.json"])
    ap.add_argument("--quick", action="store_true",
                    help="one round, fewer structures and steps; writes docs/benchmarks/quick/")
    ap.add_argument("--presets", nargs="+", default=list(PAIRS), choices=list(PAIRS))
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--max-structures", type=int)
    ap.add_argument("--valid-structures", type=int, default=8)
    ap.add_argument("--steps", type=int)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--epochs", type=int, help="MACE epochs per block")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--venv", help="MACE environment (default ~/venvs/mace or FACET_MACE_VENV)")
    ap.add_argument("--budget", nargs=3, type=int, default=[129, 4096, 9],
                    metavar=("MAX_NODES", "MAX_EDGES", "MAX_GRAPHS"),
                    help="Facet's padded batch (padding slot included). The sample data has 429 "
                    "edges per structure on average, so 8 structures fill ~3,400 edges: 4096 "
                    "keeps padding small (8192 padded every batch ~2.4x and took facet-m to "
                    "8.4 GB of XLA temporaries)")
    ap.add_argument("--no-mace", action="store_true")
    ap.add_argument("--work", help="scratch directory (default: a new temporary directory)")
    ap.add_argument("--out")
    ap.add_argument("--note", default="", help="a sentence for the report (e.g. what was left out)")
    args = ap.parse_args(argv)
    args.argv = argv
    quick = {"rounds": 1, "max_structures": 48, "steps": 4, "epochs": 1}
    full = {"rounds": 2, "max_structures": 96, "steps": 6, "epochs": 1}
    for k, v in (quick if args.quick else full).items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
