r"""Microbenchmark harness for the tensor-product variants (``facet bench tp`` calls :func:`run`).

Method (after Xie et al., ICML 2025, sec. 5; the results are read in docs/tensorproducts.md,
"Cost and measured speed"):

* **Settings** (multiplicity 1, inputs paired element-wise over a batch axis):
  ``siso``: ``x, y`` = one irrep of degree L (parity :math:`(-1)^L`), output the CG-allowed
  degree-L irrep ``Le``; ``simo``: same inputs, output ``s2_irreps(2L)``; ``mimo``:
  ``s2_irreps(L)`` inputs, ``s2_irreps(2L)`` output; ``edge`` (realistic): ``x`` with C channels of
  ``s2_irreps(L)``, ``y`` the ``s2_irreps(L)`` spherical harmonics of one edge vector shared by the
  channels, output ``s2_irreps(L)`` (the convolution of NequIP-style potentials).
* **Timing.** ``jax.jit(f).lower(...).compile()`` is timed separately (compile time); then
  ``warmup`` calls are discarded and ``repeats`` calls are timed with ``block_until_ready``.
  Variants are **interleaved** call by call (the order rotates every round) so machine noise
  hits all of them alike. Median and inter-quartile range are reported, per call and per sample.
* **Counts.** FLOPs from XLA's ``cost_analysis()`` of the compiled executable, peak memory from
  its ``memory_analysis()`` (XLA's static buffer assignment, bytes).
* **Equivariance** of every variant beside every timing, on the benchmarked batch in the
  benchmarked dtype: :math:`\max|f(Dx, Dy) - D f(x, y)| / \max|f(x, y)|` for a random
  rotation composed with inversion.
* ``forward`` and ``forward+backward`` (gradient of :math:`\frac12\sum z^2` w.r.t. both inputs).

Every row carries the configuration; the result carries versions and hardware. Variants that
fail or exceed ``max_call_s`` are recorded as ``skipped`` with the reason (larger L of that
variant/setting/mode are then skipped too), never silently dropped.

Modules: :mod:`~tensorproducts.bench.cases` (settings, :class:`BenchConfig`, candidates),
:mod:`~tensorproducts.bench.measure` (one case, interleaved), this one (the run, cost-vs-L
slopes), and the report: :mod:`~tensorproducts.bench.report` with
:mod:`~tensorproducts.bench.verdicts` (checks, losses), :mod:`~tensorproducts.bench.plots`.
:mod:`~tensorproducts.bench.runs` merges the rows of several runs into one result (each row
keeps its run id; comparisons stay within one run); :mod:`~tensorproducts.bench.main` is the
``facet bench tp`` invocation.
"""

from __future__ import annotations

import itertools
import os
import platform
import statistics
import time
from dataclasses import asdict

import e3nn_jax as e3nn
import jax
import numpy as np

from ..registry import REGISTRY
from .cases import (
    ALL_L,
    SETTINGS,
    THEORY,
    BenchConfig,
    batch_size,
    candidates,
    iter_cases,
    reached_outputs,
)
from .measure import measure_group

__all__ = [
    "ALL_L",
    "BenchConfig",
    "REGISTRY",
    "SETTINGS",
    "THEORY",
    "batch_size",
    "candidates",
    "config_dict",
    "loglog_slope",
    "measure_group",
    "median_of",
    "reached_outputs",
    "run",
    "slopes",
    "system_info",
]


_RUNS = itertools.count()

# ---------------------------------------------------------------------------- system info


def system_info() -> dict:
    """Versions and hardware, stamped on every result."""
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import flax
    import jaxlib

    return {
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "e3nn_jax": e3nn.__version__,
        "flax": flax.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "device": str(jax.devices()[0]),
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


def run(cfg: BenchConfig = BenchConfig(), log=print, on_rows=None) -> dict:  # noqa: B008 (frozen)
    """Run every case of ``cfg``; returns ``{"meta": ..., "config": ..., "rows": [...]}``.

    ``on_rows(rows)`` is called after every case with all rows so far (to save partial results);
    once ``cfg.deadline_s`` has passed the remaining cases are recorded as skipped."""
    names = list(cfg.variants) if cfg.variants else list(candidates())
    start = time.perf_counter()
    run_id = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()) + f"-{os.getpid()}"
    k = next(_RUNS)  # unique also for several runs of one process within a second
    run_id += f".{k}" if k else ""
    load0 = os.getloadavg() if hasattr(os, "getloadavg") else None
    rows: list[dict] = []
    dead: dict[tuple, str] = {}  # (variant, setting, channels, mode) -> reason (skip larger L)
    for case in iter_cases(cfg):
        group_key = (case["setting"], case["channels"], case["mode"])
        todo = []
        for n in names:
            if case["setting"] not in cfg.only_settings.get(n, (case["setting"],)):
                continue
            reason = dead.get((n,) + group_key)
            if reason is None and case["L"] > cfg.max_l.get(n, case["L"]):
                reason = f"not measured above L={cfg.max_l[n]} (configured limit, see report)"
            if reason is None and time.perf_counter() - start > cfg.deadline_s:
                reason = "time budget of the run exhausted"
            if reason:
                rows.append(dict(case, variant=n, skipped=reason, run=run_id))
            else:
                todo.append(n)
        if not todo:
            continue
        got = measure_group(case, todo, cfg, log=log)
        for row in got:
            if "skipped" in row and row["skipped"].startswith("too slow"):
                dead[(row["variant"],) + group_key] = f"{row['skipped']} at L={case['L']}"
        rows.extend(dict(r, run=run_id) for r in got)
        if on_rows is not None:
            on_rows(rows)
    meta = dict(system_info(), wall_s=time.perf_counter() - start)
    meta["load_average_at_start"] = load0
    meta["run_id"] = run_id
    return {"meta": meta,
            "config": config_dict(cfg), "rows": rows}  # fmt: skip


def config_dict(cfg: BenchConfig) -> dict:
    """``cfg`` as JSON-ready data (the ``config`` of a result)."""
    out = asdict(cfg)
    out["batch"] = {str(k): v for k, v in cfg.batch.items()}
    out["lmaxes"] = {k: list(v) for k, v in cfg.lmaxes.items()}
    return out


def loglog_slope(ls, values) -> float | None:
    """Least-squares slope of log(value) against log(L) (None with fewer than 3 points)."""
    pts = [(l, v) for l, v in zip(ls, values, strict=True) if v and v > 0]
    if len(pts) < 3:
        return None
    a = np.log([p[0] for p in pts])
    b = np.log([p[1] for p in pts])
    return float(np.polyfit(a, b, 1)[0])


def slopes(rows: list[dict], lmin: int = 5) -> list[dict]:
    """Measured cost-vs-L exponents per (variant, setting, mode): time per sample and FLOPs per
    sample, fitted over ``L >= lmin`` (the large-L part, where per-call overhead no longer
    dominates), beside :data:`THEORY`. Each fit reads one run (in a merged result, the run
    with the most points of that variant, setting and mode; the newest on a tie)."""
    runs: dict[tuple, dict[str, list[dict]]] = {}
    for r in rows:
        if r.get("channels", 1) == 1 and "median_ms" in r and r["L"] >= lmin:
            key = (r["variant"], r["setting"], r["mode"])
            runs.setdefault(key, {}).setdefault(r.get("run", ""), []).append(r)
    groups = {k: max(per.items(), key=lambda t: (len(t[1]), t[0]))[1] for k, per in runs.items()}
    out = []
    for (v, s, m), rs in sorted(groups.items()):
        rs.sort(key=lambda r: r["L"])
        ls = [r["L"] for r in rs]
        out.append({
            "variant": v, "setting": s, "mode": m, "L_range": f"{ls[0]}-{ls[-1]}",
            "time_slope": loglog_slope(ls, [r["us_per_sample"] for r in rs]),
            "flops_slope": loglog_slope(ls, [(r["flops"] or 0) / r["batch"] for r in rs]),
            "theory": THEORY.get(v, {}).get(s),
        })  # fmt: skip
    return out


def median_of(rows, **match) -> float | None:
    """Median time (ms) of the single row matching ``match`` (None when absent or skipped)."""
    hits = [r for r in rows if all(r.get(k) == v for k, v in match.items()) and "median_ms" in r]
    return statistics.median(r["median_ms"] for r in hits) if hits else None
