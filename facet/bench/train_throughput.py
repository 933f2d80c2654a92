"""Training throughput of Facet presets (structures/s and atoms/s), JSON rows plus a table.

    python -m facet.bench.train_throughput --data data/sample/mptrj_sample.json \\
        --presets facet-s facet-m

Method: the real training step of ``facet train`` (forces and stress by autodiff, AdamW, EMA,
jitted once for the fixed batch shape of the budget) on batches packed from the data; the
first ``--warmup`` steps (compilation included) are excluded, each timed step ends with
``block_until_ready``; the median and the spread (min/max) over ``--repeats`` blocks of
``--steps`` steps are reported. Versions and hardware are recorded in every row.

Peer comparison hook: :func:`trainer_rows` returns rows for one trainer; a MACE side
(``mace_run_train`` in its own environment) adds rows with the same keys
(``trainer, model, params, structures_per_s, atoms_per_s, ...``) so that one report can show
both measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path


def _versions() -> dict:
    import flax
    import jax
    import optax

    import facet

    return {"facet": facet.__version__, "jax": jax.__version__, "flax": flax.__version__,
            "optax": optax.__version__, "python": platform.python_version(),
            "machine": platform.machine(), "processor": platform.processor(),
            "devices": [str(d) for d in jax.devices()]}


def trainer_rows(data: list[str], presets: list[str], *, budget=(129, 8192, 9), steps=10,
                 repeats=3, warmup=2, dtype="float32", overrides=None) -> list[dict]:
    """Benchmark rows for the Facet trainer: one row per preset."""
    import jax
    import numpy as np

    from facet.nn.presets import count_parameters
    from facet.train.batching import Budget, EpochBatcher
    from facet.train.config import LossSection, ModelSection, OptimSection
    from facet.train.data import read_graphs
    from facet.train.e0 import fit_atomic_energies
    from facet.train.model_io import create_model_from_section
    from facet.train.optim import make_optimizer
    from facet.train.parallel import host_slots, make_mesh, put_batch, replicate
    from facet.train.step import init_state, make_step_fns, split_model

    rows = []
    for preset in presets:
        section = ModelSection(preset=preset, dtype=dtype, overrides=dict(overrides or {}))
        model = create_model_from_section(section)
        graphs = read_graphs(data, model.cutoff, "uncorrected_total_energy")
        model.set_atomic_energies(fit_atomic_energies(graphs))
        graphdef, params, rest = split_model(model)
        tx = make_optimizer(OptimSection(), 10_000)
        train_step, _ = make_step_fns(graphdef, tx, LossSection(), ema_decay=0.99)
        step = jax.jit(train_step, donate_argnums=(0,))
        mesh = make_mesh()
        n_dev = mesh.devices.size
        batcher = EpochBatcher(graphs, Budget(*budget), seed=0, n_devices=n_dev,
                               device_slots=host_slots(mesh),
                               dtype=np.float32 if dtype == "float32" else np.float64)
        n_b = batcher.steps_in_epoch(0)
        batches = [put_batch(batcher.local_batch(0, i), mesh) for i in range(n_b)]
        structs = [sum(p.size for p in batcher.global_indices(0, i)) for i in range(n_b)]
        atoms = [sum(int(batcher._n_nodes[p].sum()) for p in batcher.global_indices(0, i)
                     if p.size) for i in range(n_b)]
        state = replicate(init_state(params, tx), mesh)
        rest = replicate(rest, mesh)
        t0 = time.perf_counter()
        for i in range(warmup):
            state, m = step(state, rest, batches[i % n_b])
        jax.block_until_ready(state)
        compile_s = time.perf_counter() - t0
        s_rates, a_rates = [], []
        k = warmup
        for _ in range(repeats):
            ns = na = 0
            t0 = time.perf_counter()
            for _ in range(steps):
                state, m = step(state, rest, batches[k % n_b])
                ns += structs[k % n_b]
                na += atoms[k % n_b]
                k += 1
            jax.block_until_ready(state)
            dt = time.perf_counter() - t0
            s_rates.append(ns / dt)
            a_rates.append(na / dt)
        rows.append({
            "trainer": "facet", "model": preset, "params": count_parameters(model),
            "overrides": dict(overrides or {}), "dtype": dtype, "budget": list(budget),
            "devices": n_dev,
            "structures_per_s": statistics.median(s_rates), "structures_per_s_min": min(s_rates),
            "structures_per_s_max": max(s_rates), "atoms_per_s": statistics.median(a_rates),
            "atoms_per_s_min": min(a_rates), "atoms_per_s_max": max(a_rates),
            "warmup_s": compile_s, "steps": steps, "repeats": repeats, "data": data,
            "jit_cache_size": step._cache_size(), "versions": _versions(),
        })
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", nargs="+", default=["data/sample/mptrj_sample.json"])
    ap.add_argument("--presets", nargs="+", default=["facet-s", "facet-m"])
    ap.add_argument("--budget", nargs=3, type=int, default=[129, 8192, 9],
                    metavar=("MAX_NODES", "MAX_EDGES", "MAX_GRAPHS"))
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--out", default="docs/benchmarks/train_throughput.json")
    args = ap.parse_args()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for preset in args.presets:  # one preset at a time: rows measured so far survive a crash
        rows += trainer_rows(args.data, [preset], budget=tuple(args.budget), steps=args.steps,
                             repeats=args.repeats, warmup=args.warmup)
        out.write_text(json.dumps(rows, indent=1))
    print(f"{'trainer':8s} {'model':8s} {'params':>9s} {'struct/s':>10s} {'atoms/s':>10s} "
          f"{'(min-max atoms/s)':>20s}")
    for r in rows:
        print(f"{r['trainer']:8s} {r['model']:8s} {r['params']:9d} {r['structures_per_s']:10.2f} "
              f"{r['atoms_per_s']:10.1f} ({r['atoms_per_s_min']:.1f}-{r['atoms_per_s_max']:.1f})")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
