"""Throughput of the data pipeline: reading, preprocessing and batching, in structures per second.

Usage::

    python -m facet.bench.data                      # bundled sample + a synthetic 3000-frame file
    python -m facet.bench.data --source data/sample/mptrj_sample.json --repeats 5
    python -m facet.bench.data --synthetic 5000 --cutoff 6.0

(from the repository root: the bundled sample is ``data/sample/mptrj_sample.json`` there).

Each measurement runs once as warm-up (imports, caches, page cache), then ``--repeats`` timed
times; rows report the median and the min/max spread. Output: one JSON object per line with
versions, hardware and the load average, so that rows from different machines can be compared;
``structures_per_cpu_s`` divides by the process CPU time, which a busy shared machine distorts
less than wall time.

Measured stages:

* ``read``: stream validated frames from the source (JSON/extxyz parse, unit conversion,
  validation including the minimum-distance check);
* ``preprocess``: the whole ``facet preprocess`` (read, neighbour lists, split, HDF5 shards,
  checksums, manifest), single process;
* ``batch``: an epoch of padded batches from the shards (checksum verification on first load
  included) with a budget of about ``--graphs-per-batch`` structures, as training consumes them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from facet.nn.config import ModelConfig

SAMPLE = Path("data/sample/mptrj_sample.json")


def synthetic_mptrj(path: Path, n_frames: int, *, seed: int = 0, frames_per_material: int = 5):
    """An MPTrj-layout file of ``n_frames`` random crystals of 4..64 atoms at solid density
    (about 0.07 atoms/A^3, atoms on a jittered grid, never closer than about 1.4 A)."""
    from facet.data.frames import make_frame
    from facet.data.mptrj import write_mptrj

    rng = np.random.default_rng(seed)
    elements = np.array([1, 3, 6, 7, 8, 11, 12, 13, 14, 15, 16, 17, 19, 20, 22, 26, 29, 30])

    def frames():
        k = 0
        while k < n_frames:
            n = int(rng.integers(4, 65))
            m = int(np.ceil(n ** (1 / 3)))
            a = (n / 0.07) ** (1 / 3)
            cell = np.diag([a, a, a]) + rng.uniform(-0.1, 0.1, (3, 3)) * a
            grid = np.array(np.meshgrid(*[np.arange(m)] * 3, indexing="ij")).reshape(3, -1).T / m
            numbers = rng.choice(elements, n)
            mid = f"syn-{k}"
            base = grid[rng.choice(len(grid), n, replace=False)]
            for j in range(min(frames_per_material, n_frames - k)):
                frac = base + rng.uniform(-0.05, 0.05, base.shape) / m
                s = rng.normal(0, 0.01, (3, 3))
                yield make_frame(
                    frac @ cell, numbers, cell, True, energy=float(-4.0 * n + rng.normal()),
                    forces=rng.normal(0, 0.5, (n, 3)), stress=0.5 * (s + s.T),
                    material_id=mid, frame_id=f"t-0-{j}", min_distance=0.0,
                    info={"corrected_total_energy": float(-4.1 * n)},
                )  # fmt: skip
                k += 1

    return write_mptrj(path, frames())


_CPU: list[float] = []  # CPU seconds of the timed calls of the last _timed()


def _timed(fn, repeats: int) -> tuple[list[float], object]:
    """Wall-clock seconds of ``repeats`` calls after one warm-up call. The process CPU seconds go
    to ``_CPU``: on a shared machine wall time measures the contention, CPU time the code."""
    result = fn()  # warm-up
    times = []
    _CPU.clear()
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        result = fn()
        times.append(time.perf_counter() - t0)
        _CPU.append(time.process_time() - c0)
    return times, result


def _env() -> dict:
    from importlib.metadata import version

    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {
        "python": platform.python_version(),
        "facet": version("facet-mlip"),
        "numpy": np.__version__,
        "vesin": version("vesin"),
        "h5py": version("h5py"),
        "ijson": version("ijson"),
        "machine": platform.machine(),
        "processor": platform.processor() or platform.uname().machine,
        "cpus": os.cpu_count(),
        "loadavg": load,
    }


def _row(bench, source, n_structures, times, **extra):
    med = statistics.median(times)
    return {
        "bench": bench,
        "source": source,
        "structures": n_structures,
        "repeats": len(times),
        "median_s": round(med, 4),
        "min_s": round(min(times), 4),
        "max_s": round(max(times), 4),
        "structures_per_s": round(n_structures / med, 1),
        "cpu_median_s": round(statistics.median(_CPU), 4),
        "structures_per_cpu_s": round(n_structures / statistics.median(_CPU), 1),
        **extra,
    }


def bench_source(source: Path, label: str, args, env: dict) -> list[dict]:
    from facet.data.dataset import PreprocessedDataset
    from facet.data.preprocess import PreprocessConfig, preprocess
    from facet.data.sources import read_frames

    rows = []
    times, n = _timed(lambda: sum(1 for _ in read_frames(source)), args.repeats)
    rows.append(_row("read", label, n, times))

    with tempfile.TemporaryDirectory() as tmp:
        cfg = PreprocessConfig(cutoff=args.cutoff, val_fraction=0.05, shard_size=args.shard_size)
        out = Path(tmp) / "pre"
        times, m = _timed(
            lambda: preprocess(source, out, cfg, progress=False, overwrite=True), args.repeats
        )
        rows.append(_row("preprocess", label, m["counts"]["kept"], times, cutoff=args.cutoff))
        if args.workers > 1:
            times, m = _timed(
                lambda: preprocess(
                    source, Path(tmp) / "w", cfg, progress=False, overwrite=True,
                    workers=args.workers,
                ),
                args.repeats,
            )  # fmt: skip
            rows.append(
                _row("preprocess", label, m["counts"]["kept"], times, cutoff=args.cutoff,
                     workers=args.workers)  # CPU time here is the parent's only
            )  # fmt: skip

        ds = PreprocessedDataset(out, "train")
        budget = ds.suggest_budget(args.graphs_per_batch)

        def epoch():
            fresh = PreprocessedDataset(out, "train")  # verification and loading included
            nb = ng = 0
            for b in fresh.batches(**budget, shuffle=True, seed=0, epoch=nb):
                nb += 1
                ng += int(b.graph_mask.sum())
            return nb, ng

        times, (nb, ng) = _timed(epoch, args.repeats)
        med = statistics.median(times)
        rows.append(
            _row("batch", label, ng, times, batches=nb, batches_per_s=round(nb / med, 1),
                 budget=budget, avg_neighbors=round(ds.stats["avg_neighbors"], 2))
        )  # fmt: skip
    for r in rows:
        r["env"] = env
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--source", type=Path, default=None, help="dataset file (default: sample)")
    p.add_argument(
        "--synthetic", type=int, default=3000, help="frames of a synthetic file (0: none)"
    )
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--cutoff", type=float, default=ModelConfig.cutoff)
    p.add_argument("--shard-size", type=int, default=2000)
    p.add_argument("--graphs-per-batch", type=int, default=16)
    p.add_argument("--workers", type=int, default=1, help="also time preprocess --workers N")
    args = p.parse_args(argv)
    env = _env()
    sources = []
    src = args.source or (SAMPLE if SAMPLE.exists() else None)
    if src is not None:
        sources.append((src, src.name))
    with tempfile.TemporaryDirectory() as tmp:
        if args.synthetic:
            path = Path(tmp) / "synthetic_mptrj.json"
            synthetic_mptrj(path, args.synthetic)
            sources.append((path, f"synthetic-{args.synthetic}"))
        for path, label in sources:
            for row in bench_source(path, label, args, env):
                print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
