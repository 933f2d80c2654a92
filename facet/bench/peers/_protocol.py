"""Shared runner protocol for :mod:`facet.bench.dynamics` (runs inside every peer's own venv).

A runner is a long-lived subprocess: the orchestrator writes one JSON command per line on its
stdin and reads one JSON reply per command from its stdout (lines starting with ``@@``; anything
else a library prints is ignored). Keeping runners alive lets the orchestrator interleave the
repeats of every model without paying imports and model construction again.

Commands (all timings are wall-clock ``time.perf_counter`` seconds around the work only; ``cpu_s``
is the process CPU time of the same span, the steadier figure for one-thread runs on a shared
machine):

* ``{"cmd": "hello"}`` -> versions, thread settings, parameter count.
* ``{"cmd": "md", "file", "index", "steps", "dt_fs", "temperature_K", "seed"}``: ASE
  velocity-Verlet steps -> ``{"time_s"}``.
* ``{"cmd": "relax", "file", "index", "steps", "fmax"}``: ASE FIRE + FrechetCellFilter ->
  ``{"time_s", "steps", "converged", "energy", "calls"}``.
* ``{"cmd": "quit"}``.

Only ASE, NumPy and the standard library are used here (every venv has them).
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable


def _threads() -> dict:
    keys = ["OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "XLA_FLAGS"]
    return {k: os.environ.get(k) for k in keys}


def _read(file: str, index: int):
    from ase.io import read

    return read(file, index=index)


def cmd_md(calc, msg: dict) -> dict:
    import numpy as np
    from ase import units
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary
    from ase.md.verlet import VelocityVerlet

    atoms = _read(msg["file"], msg["index"])
    atoms.calc = calc
    MaxwellBoltzmannDistribution(
        atoms,
        temperature_K=msg.get("temperature_K", 300.0),
        rng=np.random.default_rng(msg.get("seed", 0)),
    )
    Stationary(atoms)
    dyn = VelocityVerlet(atoms, timestep=msg.get("dt_fs", 1.0) * units.fs)
    atoms.get_forces()  # the first evaluation belongs to set-up, not to the steps
    t0, c0 = time.perf_counter(), time.process_time()
    dyn.run(msg["steps"])
    return {
        "time_s": time.perf_counter() - t0,
        "cpu_s": time.process_time() - c0,
        "steps": msg["steps"],
    }


def cmd_relax(calc, msg: dict) -> dict:
    from ase.filters import FrechetCellFilter
    from ase.optimize import FIRE

    atoms = _read(msg["file"], msg["index"])
    atoms.calc = calc
    calls = {"n": 0}
    original = calc.calculate

    def counting(*a, **k):
        calls["n"] += 1
        return original(*a, **k)

    calc.calculate = counting
    try:
        opt = FIRE(FrechetCellFilter(atoms), logfile=None)
        t0, c0 = time.perf_counter(), time.process_time()
        converged = bool(opt.run(fmax=msg.get("fmax", 0.05), steps=msg["steps"]))
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    finally:
        calc.calculate = original
    return {
        "time_s": elapsed,
        "cpu_s": cpu,
        "steps": int(opt.nsteps),
        "converged": converged,
        "energy": float(atoms.get_potential_energy()),
        "calls": calls["n"],
    }


def torch_versions(*packages: str) -> dict:
    """``versions`` of a torch peer: each package's ``__version__``, torch's, its thread count."""
    import importlib

    import torch

    out = {p: importlib.import_module(p).__version__ for p in packages}
    return {**out, "torch": torch.__version__, "torch_threads": torch.get_num_threads()}


def torch_parameters(module) -> int:
    """Number of parameters of a ``torch.nn.Module``."""
    return int(sum(p.numel() for p in module.parameters()))


def serve(
    make_calculator: Callable[[str, dict], object],
    versions: Callable[[], dict],
    extra: dict[str, Callable] | None = None,
    count_parameters: Callable[[object], int] | None = None,
) -> None:
    """Answer commands for the model ``argv[1]`` (a variant name) with options ``argv[2]``."""
    variant = sys.argv[1]
    options = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    handlers = {"md": cmd_md, "relax": cmd_relax, **(extra or {})}
    out = sys.stdout
    sys.stdout = sys.stderr  # libraries that print must not corrupt the protocol
    try:
        t0 = time.perf_counter()
        calc = make_calculator(variant, options)
        setup_s = time.perf_counter() - t0
    except Exception as err:  # report the reason (e.g. missing weights) and stop
        out.write("@@" + json.dumps({"error": f"{type(err).__name__}: {err}"}) + "\n")
        out.flush()
        return
    for line in sys.stdin:
        msg = json.loads(line)
        if msg["cmd"] == "quit":
            break
        try:
            if msg["cmd"] == "hello":
                reply = {
                    "versions": versions(),
                    "python": platform.python_version(),
                    "threads": _threads(),
                    "setup_s": setup_s,
                    "parameters": count_parameters(calc) if count_parameters else None,
                }
            else:
                reply = handlers[msg["cmd"]](calc, msg)
        except Exception as err:
            reply = {"error": f"{type(err).__name__}: {err}", "trace": traceback.format_exc()}
        out.write("@@" + json.dumps(reply) + "\n")
        out.flush()
