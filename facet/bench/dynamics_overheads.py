"""Where the time of a one-at-a-time ASE relaxation goes, and batched vs one-at-a-time FIRE.

Process CPU time (one thread) rather than wall time: on a shared machine wall time mostly counts
waiting for a core. Both parts use the small strained, rattled cells (1-8 atoms) of
``facet bench relax`` (:mod:`facet.bench.dynamics`) and Facet-S with random weights,
``fmax = 0`` (a fixed number of FIRE + FrechetCellFilter steps).

* ``split``: per structure-step CPU time of ASE's FIRE + FrechetCellFilter around
  :class:`facet.FacetCalculator`, split into the jitted model call, the rest of the calculator
  (neighbour list, padding, checks, conversions) and ASE (optimiser and cell filter).
* ``batched``: :class:`facet.dynamics.BatchedFIRE` on ``--structures`` cells at once (one compiled
  loop) vs the same cells one at a time through ASE (the first ``--sequential`` of them).

Usage::

    OMP_NUM_THREADS=1 XLA_FLAGS=--xla_cpu_multi_thread_eigen=false \\
        python -m facet.bench.dynamics_overheads [--structures 100] [--sequential 20]
"""

from __future__ import annotations

import argparse
import os
import time

import jax

import facet
from facet.calculator import FacetCalculator
from facet.dynamics import BatchedFIRE
from facet.dynamics.relax import relax

from .dynamics_inputs import small_structures


def split(model, structures, steps: int) -> dict:
    """CPU ms per structure-step: total, calculator, jitted model, ASE."""
    calc = FacetCalculator(model)
    for a in structures[:5]:  # compile the buckets first
        relax(a.copy(), calc, fmax=0.0, steps=3)
    acc = {"calc": 0.0, "model": 0.0}
    calculate, predict = calc.calculate, calc._predict

    def timed_calculate(*a, **k):
        c0 = time.process_time()
        out = calculate(*a, **k)
        acc["calc"] += time.process_time() - c0
        return out

    def timed_predict(*a, **k):
        c0 = time.process_time()
        out = jax.block_until_ready(predict(*a, **k))
        acc["model"] += time.process_time() - c0
        return out

    calc.calculate, calc._predict = timed_calculate, timed_predict
    c0, t0, n = time.process_time(), time.perf_counter(), 0
    for a in structures:
        n += relax(a.copy(), calc, fmax=0.0, steps=steps).steps
    total = time.process_time() - c0
    return {
        "steps": n,
        "total_ms": 1e3 * total / n,
        "model_ms": 1e3 * acc["model"] / n,
        "calculator_other_ms": 1e3 * (acc["calc"] - acc["model"]) / n,
        "ase_ms": 1e3 * (total - acc["calc"]) / n,
        "wall_ms": 1e3 * (time.perf_counter() - t0) / n,
    }


def batched(model, structures, steps: int) -> dict:
    fire = BatchedFIRE(model)
    fire.relax([a.copy() for a in structures], fmax=0.0, max_steps=2)  # compile
    c0, t0 = time.process_time(), time.perf_counter()
    res = fire.relax([a.copy() for a in structures], fmax=0.0, max_steps=steps)
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    n = int(res.steps.sum())
    return {
        "structures": len(structures),
        "steps": n,
        "ms_per_structure_step": 1e3 * cpu / n,
        "wall_ms_per_structure_step": 1e3 * wall / n,
        "compiles": fire.compile_count(),
        "rebuilds": res.n_rebuilds,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--structures", type=int, default=100)
    ap.add_argument("--sequential", type=int, default=20)
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f}", flush=True)
    model = facet.create_model("facet-s")
    structures = small_structures(args.structures)
    b = batched(model, structures, args.steps)
    print(f"batched: {b}", flush=True)
    s = split(model, structures[: args.sequential], args.steps)
    print(f"one at a time (CPU ms per structure-step): {s}", flush=True)
    print(f"speed-up per structure-step (CPU): {s['total_ms'] / b['ms_per_structure_step']:.2f}x")
    print(f"load average {os.getloadavg()[0]:.1f}", flush=True)


if __name__ == "__main__":
    main()
