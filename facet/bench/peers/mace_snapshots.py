"""MACE's own trainer with EMA snapshots every N optimiser steps and the CPU time spent to each.

Runs in the MACE environment (torch + mace-torch), launched by
:mod:`facet.bench.time_to_accuracy`::

    /path/to/mace-venv/bin/python facet/bench/peers/mace_snapshots.py --snap-dir D --every 500 \\
        --budget-s 4500 -- <mace_run_train arguments>

``mace_run_train`` validates once per epoch (``--eval_interval`` counts epochs); with 55k
training structures and 8 per batch an epoch is ~6,900 steps, longer than a CPU budget of about an
hour. So the training itself is MACE's, unchanged (``mace.cli.run_train.main`` with the given
arguments), and this wrapper only observes it: it wraps ``mace.tools.train.take_step`` (one
optimiser step: forward, forces and stress, loss, backward, clipping, optimiser, EMA) and, every
``--every`` steps, pickles the model with the EMA weights swapped in (``ema.average_parameters()``,
what MACE itself evaluates and saves) to ``<snap-dir>/step_<N>.model``, a file that
``mace_eval_configs`` and ``MACECalculator`` load like any ``.model``. The snapshots are scored
afterwards in another process, so validation costs the training budget nothing.

CPU time (``time.process_time()``: user + system of every thread of this process) is counted from
the start of the first optimiser step; data loading, E0 fitting and statistics before it, and the
snapshot writes themselves, are not counted (the latter are measured and subtracted, as is any
per-epoch validation MACE runs itself: Facet's logged time excludes its validation too). Data
loading between steps (MACE's DataLoader, ``--num_workers 0``: in this process) is counted, as
Facet's host-side batching is in its step time. ``<snap-dir>/snapshots.jsonl`` gets one line per
snapshot: ``step``, ``cpu_s`` (counted CPU), ``wall_s`` (wall clock since the first step, minus
the snapshot writes), ``process_cpu_s`` (raw), ``file``.

The run ends when ``--budget-s`` of wall clock have passed since launch (checked after every
step): a last snapshot is written and the process exits without MACE's end-of-training work.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--" not in argv:
        raise SystemExit("usage: mace_snapshots.py [options] -- <mace_run_train arguments>")
    cut = argv.index("--")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--snap-dir", required=True)
    ap.add_argument("--every", type=int, default=500, help="snapshot every N optimiser steps")
    ap.add_argument("--budget-s", type=float, help="wall-clock seconds from launch")
    ap.add_argument("--max-steps", type=int, help="stop after this many optimiser steps")
    args = ap.parse_args(argv[:cut])
    if args.every < 1:
        raise SystemExit(f"--every must be >= 1, got {args.every}")
    t_launch = time.perf_counter()

    import importlib

    import torch
    from mace.cli import run_train

    # the module, not the function ``mace.tools.train`` that ``mace.tools`` re-exports
    mace_train_mod = importlib.import_module("mace.tools.train")

    snap_dir = Path(args.snap_dir)
    snap_dir.mkdir(parents=True, exist_ok=True)
    index = open(snap_dir / "snapshots.jsonl", "a")  # noqa: SIM115 - closed at exit
    original = mace_train_mod.take_step
    st = {"step": 0, "cpu0": None, "wall0": None, "overhead_cpu": 0.0, "overhead_wall": 0.0}

    def snapshot(model, ema) -> None:
        c0, w0 = time.process_time(), time.perf_counter()
        cpu_s = c0 - st["cpu0"] - st["overhead_cpu"]
        wall_s = w0 - st["wall0"] - st["overhead_wall"]
        path = snap_dir / f"step_{st['step']:07d}.model"
        if ema is not None:
            with ema.average_parameters():
                torch.save(model, path)
        else:
            torch.save(model, path)
        index.write(json.dumps({"step": st["step"], "cpu_s": cpu_s, "wall_s": wall_s,
                                "process_cpu_s": c0, "file": path.name,
                                "ema": ema is not None}) + "\n")
        index.flush()
        st["overhead_cpu"] += time.process_time() - c0
        st["overhead_wall"] += time.perf_counter() - w0

    def take_step(*a, **kw):
        if st["cpu0"] is None:
            st["cpu0"], st["wall0"] = time.process_time(), time.perf_counter()
        out = original(*a, **kw)
        st["step"] += 1
        model, ema = kw.get("model", a[0] if a else None), kw.get("ema")
        over = (args.budget_s is not None and time.perf_counter() - t_launch > args.budget_s) \
            or (args.max_steps is not None and st["step"] >= args.max_steps)
        if st["step"] % args.every == 0 or over:
            snapshot(model, ema)
        if over:
            index.close()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)  # skip MACE's end-of-training evaluation on the whole training set
        return out

    original_eval = mace_train_mod.evaluate

    def evaluate(*a, **kw):  # MACE's per-epoch validation: not training time (as in Facet's log)
        c0, w0 = time.process_time(), time.perf_counter()
        try:
            return original_eval(*a, **kw)
        finally:
            if st["cpu0"] is not None:
                st["overhead_cpu"] += time.process_time() - c0
                st["overhead_wall"] += time.perf_counter() - w0

    mace_train_mod.take_step = take_step
    mace_train_mod.evaluate = evaluate
    sys.argv = ["mace_run_train", *argv[cut + 1:]]
    run_train.main()
    index.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
