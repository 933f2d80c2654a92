"""Relaxation and MD speed of Facet against peers, side by side in one run (not a test).

Every model runs in its own long-lived subprocess (``facet/bench/peers/run_*.py`` under the
peer's own Python), so the repeats of all models interleave: ``for repeat: for task: for size: for
model``. The first call of every (model, task, size) is a warm-up (compilation, caches) and is
reported separately; medians and spread (min, max) are over the timed repeats. Every process gets
``OMP_NUM_THREADS=MKL_NUM_THREADS=OPENBLAS_NUM_THREADS=1``; JAX processes also get single-threaded
XLA (``--jax-threads default`` keeps XLA's own thread pool); the settings are recorded.

Tasks:

* ``md``: ASE velocity-Verlet steps/s on Si diamond cells of 8, 64 and 216 atoms (300 K, 1 fs),
  Facet presets (random weights) vs MACE at the MACE-MP-0 small/medium sizes (random weights);
  plus Facet's compiled jax-md loop.
* ``relax``: time per FIRE + FrechetCellFilter step on the same cells (strained 2 %, rattled),
  a fixed number of steps (fmax = 0, never converges);
  time to convergence (fmax 0.05, <= 500 steps) on six strained/rattled Materials Project
  structures for the trained peers (SevenNet-0, CHGNet, Nequix-MP-1); Facet without a trained
  default model runs a fixed number of steps instead (stated in the report);
  batched FIRE of many small structures in one compiled loop vs one-at-a-time ASE relaxation.

Usage::

    facet bench md|relax --venvs-dir DIR [--nequix-model PATH] [--quick]
    python -m facet.bench.dynamics --only all --venvs-dir DIR [--nequix-model PATH] [--quick]

``DIR/<peer>/bin/python`` is each peer's interpreter (``mace``, ``sevenn``, ``chgnet``,
``nequix``); ``--python peer=PATH`` overrides one. Missing peers are reported as skipped with the
reason. Output: ``docs/benchmarks/dynamics/`` (``--quick``: ``docs/benchmarks/quick/dynamics/``)
with ``results.json`` (rows), ``report.md`` and PNG plots, relative to the working folder.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .dynamics_inputs import NATOMS, mp_structures, si_cells, small_structures
from .dynamics_report import write_report
from .meta import cpu_model

__all__ = [
    "FULL_DIR", "MODELS", "PEER_DIR", "QUICK_DIR", "SELECTIONS", "Model", "Plan", "Runner",
    "add_arguments", "machine_info", "main", "run",
    # the structures (facet.bench.dynamics_inputs, re-exported)
    "NATOMS", "mp_structures", "si_cells", "small_structures",
]

#: The runner scripts, part of this package: each runs by its path under a peer's own Python.
PEER_DIR = Path(__file__).resolve().parent / "peers"
FULL_DIR = Path("docs/benchmarks/dynamics")
QUICK_DIR = Path("docs/benchmarks/quick/dynamics")


@dataclass(frozen=True)
class Model:
    name: str  # row label
    venv: str  # "self" = this interpreter, else the peer's venv name
    runner: str
    variant: str
    trained: bool  # real weights (time to convergence is meaningful)
    tasks: tuple[str, ...]
    options: dict = field(default_factory=dict, hash=False)


MODELS = [
    Model(
        "facet-s",
        "self",
        "run_facet.py",
        "facet-s",
        False,
        ("md", "md_jax", "relax_step", "converge", "batched"),
    ),
    Model("facet-m", "self", "run_facet.py", "facet-m", False, ("md", "relax_step")),
    Model("mace-mp0-small", "mace", "run_mace.py", "mace-mp0-small", False, ("md", "relax_step")),
    Model("mace-mp0-medium", "mace", "run_mace.py", "mace-mp0-medium", False, ("md", "relax_step")),
    Model("sevennet-0", "sevenn", "run_sevenn.py", "7net-0", True, ("converge",)),
    Model("chgnet-0.3.0", "chgnet", "run_chgnet.py", "chgnet", True, ("converge",)),
    Model("nequix-mp-1", "nequix", "run_nequix.py", "nequix-mp-1", True, ("converge",)),
]

#: ``--only`` selections (also used by ``facet bench md`` / ``facet bench relax``).
SELECTIONS = {
    "md": ("md", "md_jax"),
    "relax": ("relax_step", "converge", "batched"),
    "all": ("md", "md_jax", "relax_step", "converge", "batched"),
}


class Runner:
    """A model's subprocess speaking the JSON lines of :mod:`facet.bench.peers._protocol`."""

    def __init__(self, model: Model, python: str, env: dict, log, cpu: int | None = None):
        self.model = model
        # Pinned to one core: thread settings alone leave XLA:CPU running independent
        # operations on a second core (CPU time above wall time), which the peers never do.
        pin = None if cpu is None else (lambda: os.sched_setaffinity(0, {cpu}))
        self.proc = subprocess.Popen(
            [python, str(PEER_DIR / model.runner), model.variant, json.dumps(model.options)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=env,
            cwd=str(PEER_DIR),
            preexec_fn=pin,
        )

    def ask(self, msg: dict) -> dict:
        if self.proc.poll() is not None:
            return {"error": f"runner exited with code {self.proc.returncode}"}
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()
        for line in self.proc.stdout:
            if line.startswith("@@"):
                return json.loads(line[2:])
        return {"error": f"runner exited with code {self.proc.wait()}"}

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write('{"cmd": "quit"}\n')
                self.proc.stdin.flush()
                self.proc.wait(timeout=30)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self.proc.kill()


def machine_info() -> dict:
    return {
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "loadavg_start": os.getloadavg(),
    }


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options (shared with ``facet bench md`` / ``facet bench relax``)."""
    p.add_argument(
        "--venvs-dir", help="directory holding one venv per peer (DIR/<peer>/bin/python)"
    )
    p.add_argument("--python", action="append", default=[], metavar="PEER=PATH")
    p.add_argument("--nequix-model", help="path of nequix-mp-1.nqx (not part of the repository)")
    p.add_argument("--only", choices=sorted(SELECTIONS), default="all")
    p.add_argument("--models", help="comma-separated subset of model names")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--steps", type=int, default=10, help="timed MD / FIRE steps per call")
    p.add_argument("--quick", action="store_true", help="small sizes, few steps, one repeat")
    p.add_argument("--jax-threads", choices=["single", "default"], default="single")
    p.add_argument(
        "--facet-model",
        help="trained Facet model (path or name) for the facet-s rows instead of random weights "
        "(other presets keep random weights)",
    )
    p.add_argument("--out", help="output directory (default docs/benchmarks/dynamics or quick)")
    p.add_argument("--skip-tasks", default="", help="comma-separated tasks to leave out")
    p.add_argument("--converge-structures", type=int, default=4)
    p.add_argument("--batched-steps", type=int, default=30)
    p.add_argument(
        "--report-only",
        action="store_true",
        help="rewrite report.md and the plots from OUT/results.json",
    )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(p)
    return run(p.parse_args(argv))


@dataclass(frozen=True)
class Plan:
    """Sizes, step counts and repeats of one run (``--quick``: small sizes, few steps)."""

    quick: bool
    repeats: int
    md_steps: int
    relax_steps: int
    conv_n: int  # structures relaxed to convergence
    conv_steps: int  # step limit of the trained models
    facet_conv_steps: int  # fixed steps of the untrained ones
    batch_n: int
    batch_steps: int
    sizes: list[int]  # indices into NATOMS
    jax_sizes: list[int]  # the compiled MD loop (compiling is costly)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Plan:
        quick = args.quick
        return cls(
            quick=quick,
            repeats=1 if quick else args.repeats,
            md_steps=5 if quick else args.steps,
            relax_steps=5 if quick else args.steps,
            conv_n=2 if quick else args.converge_structures,
            conv_steps=100 if quick else 500,
            facet_conv_steps=20 if quick else 50,
            batch_n=16 if quick else 100,
            batch_steps=10 if quick else args.batched_steps,
            sizes=[0] if quick else [0, 1, 2],
            jax_sizes=[0] if quick else [1],  # 64 atoms
        )


def _runner_env(args: argparse.Namespace) -> tuple[dict, int | None]:
    """The environment of every runner (one thread each) and the core they share, if pinned."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    if args.jax_threads == "single":
        env["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    env["JAX_PLATFORMS"] = "cpu"  # no accelerator probing (and the same backend for all)
    # Every runner on the same single core (they take turns), unless XLA may use its threads.
    pin_cpu = min(os.sched_getaffinity(0)) if args.jax_threads == "single" else None
    return env, pin_cpu


def _input_files(plan: Plan) -> dict[str, Path]:
    """The structures of the tasks, written to a temporary folder."""
    tmp = Path(tempfile.mkdtemp(prefix="bench_dyn_"))
    from ase.io import write

    files = {
        "cells": tmp / "si_cells.extxyz",
        "conv": tmp / "mp_structures.extxyz",
        "small": tmp / "small.extxyz",
    }
    write(files["cells"], si_cells(0.03, 0.02))
    write(files["conv"], mp_structures(plan.conv_n))
    write(files["small"], small_structures(plan.batch_n))
    return files


def _configured(m: Model, args: argparse.Namespace) -> Model:
    """``m`` with the options of this run (the Nequix weights, a trained Facet model)."""
    opts = dict(m.options)
    if m.name == "nequix-mp-1":
        # Runners work in facet/bench/peers: pass an absolute path resolved from here.
        opts["model_path"] = str(Path(args.nequix_model).resolve()) if args.nequix_model else ""
    if m.name == "facet-s" and args.facet_model:
        # The trained model replaces facet-s only (the shipped default is a facet-s); the
        # other presets keep random weights, so each row is the architecture it names.
        opts["model"] = args.facet_model
    trained = m.trained or (m.name == "facet-s" and bool(args.facet_model))
    return Model(m.name, m.venv, m.runner, m.variant, trained, m.tasks, opts)


def _start_runners(args, tasks, env, pin_cpu, log) -> tuple[dict[str, Runner], dict, dict]:
    """(ready runners by model name, skipped models with the reason, each runner's hello)."""
    selected = [m for m in MODELS if set(m.tasks) & set(tasks)]
    if args.models:
        keep = set(args.models.split(","))
        selected = [m for m in selected if m.name in keep]
    pythons = dict(kv.split("=", 1) for kv in args.python)
    runners: dict[str, Runner] = {}
    skipped, meta = {}, {}
    pending: list[Runner] = []
    for m in selected:
        m = _configured(m, args)
        if m.venv == "self":
            python = sys.executable
        else:
            python = pythons.get(m.venv) or (
                str(Path(args.venvs_dir) / m.venv / "bin" / "python") if args.venvs_dir else ""
            )
            if not python or not Path(python).exists():
                skipped[m.name] = f"no python for peer {m.venv!r} (--venvs-dir/--python)"
                print(f"[bench] {m.name}: skipped ({skipped[m.name]})", flush=True)
                continue
        pending.append(Runner(m, python, env, log, cpu=pin_cpu))
    for r in pending:  # every runner loads in parallel; ask each in turn
        m = r.model
        hello = r.ask({"cmd": "hello"})
        if "error" in hello:
            skipped[m.name] = hello["error"]
            print(f"[bench] {m.name}: skipped ({hello['error']})", flush=True)
            r.close()
            continue
        runners[m.name], meta[m.name] = r, hello
        print(f"[bench] {m.name}: ready ({hello.get('setup_s', 0):.1f} s set-up)", flush=True)
    return runners, skipped, meta


def _messages(task: str, r: Runner, plan: Plan, files: dict[str, Path], rep: int):
    """The calls of one task for one runner in repeat ``rep``: (row task, size, message)."""
    if task in ("md", "md_jax", "relax_step"):
        for s in plan.sizes if task != "md_jax" else plan.jax_sizes:
            msg = {
                "cmd": "relax" if task == "relax_step" else task,
                "file": str(files["cells"]),
                "index": s,
            }
            if task == "relax_step":
                msg.update(steps=plan.relax_steps, fmax=0.0)
            else:
                msg.update(steps=plan.md_steps, dt_fs=1.0, temperature_K=300.0)
            yield task, NATOMS[s], msg
    elif task == "converge":
        steps = plan.conv_steps if r.model.trained else plan.facet_conv_steps
        fmax = 0.05 if r.model.trained else 0.0
        # Warm-up on the first structure only (long relaxations are costly).
        for k in range(1 if rep == 0 else plan.conv_n):
            msg = {
                "cmd": "relax",
                "file": str(files["conv"]),
                "index": k,
                "steps": steps,
                "fmax": fmax,
            }
            yield task, k, msg
    elif task == "batched":
        for mode in ("batched", "sequential"):
            msg = {
                "cmd": "batched_relax",
                "file": str(files["small"]),
                "steps": plan.batch_steps,
                "fmax": 0.0,
                "mode": mode,
            }
            yield f"batched_{mode}", plan.batch_n, msg


def _call(m: Runner, task: str, size: int | None, msg: dict, rep: int) -> dict:
    """One timed request: its row (the reply with task, model, size, repeat and wall time)."""
    t0 = time.perf_counter()
    reply = m.ask(msg)
    row = {
        "task": task,
        "model": m.model.name,
        "size": size,
        "rep": rep,
        "warmup": rep == 0,
        "wall_s": time.perf_counter() - t0,
        **reply,
    }
    print(f"[bench] rep {rep} {m.model.name} {task} {size}: {row['wall_s']:.1f} s", flush=True)
    if "error" in reply:
        print(f"[bench] {m.model.name} {task} {size}: {reply['error']}", flush=True)
    return row


def _info(args, plan: Plan, env: dict, pin_cpu, machine: dict, meta: dict, skipped: dict):
    """The run's ``info`` of results.json: machine, threads, models, settings, date."""
    return {
        "machine": {**machine, "loadavg_end": os.getloadavg()},
        "threads": {
            k: env.get(k)
            for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "XLA_FLAGS")
        },
        "jax_threads": args.jax_threads,
        "pinned_cpu": pin_cpu,
        "models": meta,
        "skipped": skipped,
        "settings": {
            "quick": plan.quick,
            "repeats": plan.repeats,
            "md_steps": plan.md_steps,
            "relax_steps": plan.relax_steps,
            "converge_steps_trained": plan.conv_steps,
            "converge_steps_random": plan.facet_conv_steps,
            "batched_structures": plan.batch_n,
            "batched_steps": plan.batch_steps,
            "sizes": [NATOMS[s] for s in plan.sizes],
            "facet_model": (
                f"facet-s: {args.facet_model}, other presets: random weights"
                if args.facet_model
                else "random weights"
            ),
        },
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }


def run(args: argparse.Namespace) -> int:
    """Run the benchmark described by parsed ``args`` (see :func:`add_arguments`)."""
    if args.report_only:
        out = Path(args.out or FULL_DIR)
        data = json.loads((out / "results.json").read_text())
        write_report(out, data["info"], data["rows"])
        return 0

    plan = Plan.from_args(args)
    out = Path(args.out or (QUICK_DIR if plan.quick else FULL_DIR))
    out.mkdir(parents=True, exist_ok=True)
    skip = set(filter(None, args.skip_tasks.split(",")))
    tasks = tuple(t for t in SELECTIONS[args.only] if t not in skip)
    env, pin_cpu = _runner_env(args)
    machine = machine_info()  # load average at the start
    files = _input_files(plan)
    rows = []
    log = open(out / "runners.log", "w")  # noqa: SIM115 - closed at the end
    runners, skipped, meta = _start_runners(args, tasks, env, pin_cpu, log)
    for rep in range(plan.repeats + 1):  # rep 0 is the warm-up
        for task in tasks:
            for r in runners.values():
                if task not in r.model.tasks:
                    continue
                if task in ("converge", "batched") and rep > 1:
                    continue  # long tasks: one warm-up and one timed repeat
                for label, size, msg in _messages(task, r, plan, files, rep):
                    rows.append(_call(r, label, size, msg, rep))
        print(f"[bench] repeat {rep} done", flush=True)
        partial = {"info": {"partial_after_repeat": rep}, "rows": rows}
        (out / "results.partial.json").write_text(json.dumps(partial, indent=1))
    for r in runners.values():
        r.close()
    log.close()
    info = _info(args, plan, env, pin_cpu, machine, meta, skipped)
    (out / "results.json").write_text(json.dumps({"info": info, "rows": rows}, indent=1))
    (out / "results.partial.json").unlink(missing_ok=True)
    write_report(out, info, rows)
    print(f"[bench] wrote {out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
