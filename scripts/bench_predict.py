"""facet predict (batched, training shape) vs one-at-a-time FacetCalculator calls: CPU time and
wall time, ABAB-interleaved after warm-up, on data/sample/sample.extxyz (286 frames).

    OMP_NUM_THREADS=1 taskset -c 0 python scripts/bench_predict.py   # from the repository root
"""

import time

import numpy as np
from ase.io import read

from facet import FacetCalculator
from facet.data.neighbors import graph_from_atoms
from facet.predict import Predictor, _plan, predict_structures

frames = read("data/sample/sample.extxyz", ":")
calc = FacetCalculator("default")
pred = Predictor(calc.model)
budget = (113, 3584, 9)  # the shipped model's training batch shape
graphs = [graph_from_atoms(a, calc.model.cutoff, labels_from_calc=False) for a in frames]
plan = _plan(graphs, budget)
real_e = sum(g.n_edge for g in graphs)
pad_e = sum(shape[1] for shape, _ in plan)
print(f"batches {len(plan)}; padded edges {pad_e} for {real_e} real ({pad_e / real_e:.2f}x)")


def run_calc():
    padded = 0
    for a in frames:
        b = a.copy()
        b.calc = calc
        b.get_potential_energy()
        b.get_forces()
        b.get_stress()
        padded += calc._shape[1]
    return padded


def run_batched():
    predict_structures(calc.model, frames, predictor=pred, budget=budget)


cal_e = run_calc()  # warm-up: compiles every bucket the calculator uses
print(f"calculator padded edges {cal_e} ({cal_e / real_e:.2f}x real)")
run_batched()

rows: dict[str, list] = {"batched": [], "calculator": []}
order = [("batched", run_batched), ("calculator", run_calc)]
for r in range(4):
    for name, fn in order if r % 2 == 0 else order[::-1]:
        w, c = time.perf_counter(), time.process_time()
        fn()
        rows[name].append((time.perf_counter() - w, time.process_time() - c))
med = {}
for name, v in rows.items():
    v = np.asarray(v)
    med[name] = np.median(v[:, 1])
    print(f"{name:10s} wall median {np.median(v[:, 0]):.2f} s, CPU median {med[name]:.2f} s "
          f"({len(frames) / med[name]:.1f} structures per CPU-s); CPU all {np.round(v[:, 1], 2)}")
print(f"CPU-time ratio calculator/batched {med['calculator'] / med['batched']:.2f}x; compiled "
      f"shapes: batched {pred.compile_count}, calculator {calc.compile_count}")
