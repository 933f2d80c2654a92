"""Benchmark Facet presets: energy+forces+stress throughput, compile time and cost split.

For every preset (and, optionally, every product) on rattled diamond-Si cells of 64 and 216 atoms:

* compile time of the jitted ``predict`` (first call minus one steady call);
* throughput in atoms/s of energy + forces + stress (median of ``--repeats`` timed calls after a
  warm-up, with the spread), ``block_until_ready`` on every call; wall time and the process CPU
  time of the same calls (``cpu_s``, ``atoms_per_cpu_s``): with one thread on a shared machine the
  CPU time is the steadier figure;
* ``--compare-generic``: for ``cg-dense``, also rows with the fused edge product switched off
  (``path = "generic"``: the registry product with ``Y`` broadcast over channels), timed
  interleaved with the fused rows (before/after of ``cg-dense``'s ``edge_kernel``,
  :mod:`tensorproducts.cg_dense_edge`);
* cost split of one forward + backward pass between the radial map, the message product (gather,
  product, scatter), the grid mixing and the readout, each timed as its own jitted
  value-and-gradient over the same inputs (fractions of their sum).

Usage::

    python -m facet.bench.model                       # all presets, their default product
    python -m facet.bench.model --products cg-dense so2 gaunt-grid --json bench.json

Prints a table plus JAX/device versions; ``--json`` writes the rows; ``--report DIR`` also writes
``DIR/results.json``, ``report.md`` and the plot in the layout of ``facet bench model`` plus a
CPU-time table (fused vs generic rows side by side); ``--render JSON --report DIR`` only renders
the report of an earlier ``--json`` file.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import e3nn_jax as e3nn
import jax
import jax.numpy as jnp
import numpy as np
from ase.build import bulk
from flax import nnx

import facet
import tensorproducts
from facet.data import collate
from facet.data.neighbors import graph_from_atoms
from facet.nn.interaction import rms_norm
from facet.nn.linear import natural_irreps
from facet.nn.presets import PRESETS, count_parameters
from facet.nn.radial import RADIAL_BASES, polynomial_envelope
from facet.physics import predict

from .meta import run_meta
from .wrapped import model_result, write_model_report


def cell(n_rep: int):
    atoms = bulk("Si", "diamond", a=5.43, cubic=True) * (n_rep, n_rep, n_rep)
    atoms.rattle(0.05, seed=0)
    return atoms


def timed(fn, *args, repeats=10, cpu=None):
    """``(compile_s, median_s, (min_s, max_s))`` of wall time; with a list ``cpu``, the CPU
    seconds of each timed call are appended to it."""
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
        if cpu is not None:
            cpu.append(time.process_time() - c0)
    med = statistics.median(times)
    spread = (min(times), max(times))
    return first - med, med, spread


@contextlib.contextmanager
def generic_path(enabled: bool):
    """Inside: ``cg-dense`` messages run the reference of the edge product (its registered
    ``edge_kernel`` removed)."""
    saved = tensorproducts.REGISTRY["cg-dense"]
    if enabled:
        tensorproducts.REGISTRY["cg-dense"] = dataclasses.replace(saved, edge_kernel=None)
    try:
        yield
    finally:
        tensorproducts.REGISTRY["cg-dense"] = saved


def _has_kernel(product: str) -> bool:
    return tensorproducts.get(product).edge_kernel is not None


def cost_split(model, batch, repeats):
    """Median seconds of value+grad of each component on the batch's real geometry."""
    cfg = model.config
    dtype = model.dtype
    from facet.nn.model import edge_vectors

    vec = edge_vectors(
        jnp.asarray(batch.positions, dtype),
        jnp.asarray(batch.cell, dtype),
        jnp.asarray(batch.shifts, dtype),
        batch.senders,
        batch.receivers,
        batch.node_graph,
    )
    vec = jnp.where(batch.edge_mask[:, None], vec, jnp.asarray([0.0, 0.0, 1.0], dtype))
    r = jnp.linalg.norm(vec, axis=-1)
    sh = e3nn.spherical_harmonics(natural_irreps(cfg.lmax), vec, True, "component").array
    n = batch.positions.shape[0]
    rng = np.random.default_rng(0)
    blocks = list(model.blocks)
    h_in = [jnp.asarray(rng.normal(size=(n, cfg.channels, b.irreps_in.dim)), dtype) for b in blocks]
    m_in = [jnp.asarray(rng.normal(size=(n, cfg.channels, b.irreps.dim)), dtype) for b in blocks]

    def radial(model, r):
        feats = RADIAL_BASES[cfg.radial_basis](r, cfg.num_radial, cfg.cutoff)
        feats = feats * polynomial_envelope(r, cfg.cutoff, cfg.envelope_p)[:, None]
        return sum(jnp.sum(b.radial(feats)) for b in model.blocks)

    feats0 = RADIAL_BASES[cfg.radial_basis](r, cfg.num_radial, cfg.cutoff)
    w_in = [b.radial.factors(feats0, b.channels)[1] for b in blocks]

    def product(model, hs, ws):
        tot = 0.0
        for b, h, w in zip(model.blocks, hs, ws, strict=True):
            a = b.msg(h, sh, feats0, w, batch.senders, batch.receivers, n)
            tot = tot + jnp.sum(a**2)
        return tot

    def mixing(model, ms):
        return sum(
            jnp.sum(b.mixer(rms_norm(m)) ** 2) for b, m in zip(model.blocks, ms, strict=True)
        )

    def readout(model, h):
        return jnp.sum(model._readout(h))

    parts = {
        "radial": (radial, (r,)),
        "product": (product, (h_in, w_in)),
        "grid_mixing": (mixing, (m_in,)),
        "readout": (readout, (m_in[-1][:, :, 0],)),
    }
    out = {}
    for name, (f, args) in parts.items():
        g = nnx.jit(lambda model, *a, f=f: jax.value_and_grad(f, argnums=1)(model, *a))
        _, med, _ = timed(g, model, *args, repeats=repeats)
        out[name] = med
    return out


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", nargs="*", default=list(PRESETS))
    ap.add_argument("--products", nargs="*", default=None, help="default: each preset's own")
    ap.add_argument("--sizes", nargs="*", type=int, default=[2, 3], help="diamond-Si repeats")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--json", default=None)
    ap.add_argument("--report", default=None, help="write report.md, results.json, plot here")
    ap.add_argument("--render", default=None, help="only render --report from this --json file")
    ap.add_argument(
        "--compare-generic",
        action="store_true",
        help="cg-dense also without the fused edge product (before/after rows, interleaved)",
    )
    return ap


def _measure(model, batch, paths: list[str], repeats: int) -> dict[str, dict]:
    """Per edge-product path: the jitted call, its compile time and cost split, and the wall
    (``t``) and CPU (``c``) times of ``repeats`` calls, the paths timed interleaved."""
    measured = {}
    for path in paths:  # compile (and warm up) each path, then time interleaved
        with generic_path(path == "generic"):
            run = nnx.jit(lambda m, b: predict(m, b, forces=True, stress=True))
            compile_s, _, _ = timed(run, model, batch, repeats=1)
            split = cost_split(model, batch, max(3, repeats // 2))
        measured[path] = dict(run=run, compile_s=compile_s, split=split, t=[], c=[])
    for _ in range(repeats):
        for m in measured.values():
            _, t, _ = timed(m["run"], model, batch, repeats=1, cpu=m["c"])
            m["t"].append(t)
    return measured


def _row(preset: str, product: str, path: str, atoms, g, model, m: dict) -> dict:
    """The result row of one measured path (and its line on stdout)."""
    med, spread = statistics.median(m["t"]), (min(m["t"]), max(m["t"]))
    cpu = statistics.median(m["c"])
    tot = sum(m["split"].values())
    row = {
        "preset": preset,
        "product": product,
        "path": path
        or ("fused" if _has_kernel(product) else "generic"),
        "atoms": len(atoms),
        "edges": g.n_edge,
        "params": count_parameters(model),
        "compile_s": round(m["compile_s"], 2),
        "step_s": med,
        "step_min_s": spread[0],
        "step_max_s": spread[1],
        "atoms_per_s": len(atoms) / med,
        "cpu_s": cpu,
        "cpu_min_s": min(m["c"]),
        "cpu_max_s": max(m["c"]),
        "atoms_per_cpu_s": len(atoms) / cpu,
        "split": {k: round(v / tot, 3) for k, v in m["split"].items()},
    }
    print(
        f"{preset:8s} {product:12s} {row['path']:7s} {len(atoms):4d} atoms "
        f"{g.n_edge:6d} edges  compile {m['compile_s']:6.1f} s  step "
        f"{med * 1e3:8.1f} ms [{spread[0] * 1e3:.1f}-{spread[1] * 1e3:.1f}] "
        f"cpu {cpu * 1e3:8.1f} ms  {len(atoms) / med:7.0f} atoms/s "
        f"({len(atoms) / cpu:7.0f} per cpu-s)  split "
        + " ".join(f"{k}={v:.0%}" for k, v in row["split"].items()),
        flush=True,
    )
    return row


def main() -> None:
    args = _parser().parse_args()
    if args.render:
        with open(args.render) as fh:
            write_report(json.load(fh), args.report, args.render)
        return

    load_start = os.getloadavg()
    print(
        f"load average {load_start[0]:.1f}; jax {jax.__version__} on "
        f"{jax.devices()[0].platform} ({platform.processor() or '?'}), {args.dtype}"
    )
    rows = []
    for preset in args.presets:
        for product in args.products or [PRESETS[preset].product]:
            paths = ["fused", "generic"] if args.compare_generic and product == "cg-dense" else [""]
            model = facet.create_model(preset, product=product, dtype=args.dtype)
            for rep in args.sizes:
                atoms = cell(rep)
                g = graph_from_atoms(atoms, model.cutoff)
                batch = collate([g], dtype=np.dtype(args.dtype))
                measured = _measure(model, batch, paths, args.repeats)
                for path, m in measured.items():
                    rows.append(_row(preset, product, path, atoms, g, model, m))
    raw = {
        "jax": jax.__version__,
        "device": str(jax.devices()[0]),
        "loadavg_start": load_start,
        "loadavg_end": os.getloadavg(),
        "threads": {
            k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "XLA_FLAGS")
        },
        "argv": sys.argv[1:],
        "date_utc": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "rows": rows,
    }
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(raw, fh, indent=1)
    if args.report:
        write_report(raw, args.report, "this run")


def write_report(raw: dict, out: str, source: str) -> None:
    """``facet bench model``'s report of ``raw`` plus a CPU-time and fused-vs-generic table."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cmd = "python -m facet.bench.model " + " ".join(raw.get("argv", []))
    meta = run_meta(dtype=raw["rows"][0].get("dtype", "float32"), seed=0, command=cmd)
    meta.update(loadavg_start=raw.get("loadavg_start"), loadavg_end=raw.get("loadavg_end"))
    meta["date_utc"] = raw.get("date_utc", meta["date_utc"])
    meta["threads"] = raw.get("threads", meta.get("threads"))
    meta["script_args"] = raw.get("argv", [])
    # Generic rows of a product that has a fused path are labelled as such in the shared table.
    labelled = [
        {**r, "product": f"{r['product']} (generic)"}
        if r.get("path") == "generic" and _has_kernel(r["product"])
        else r
        for r in raw["rows"]
    ]
    res = model_result({**raw, "rows": labelled}, meta)
    path = write_model_report(res, out)
    rows = raw["rows"]
    lines = [
        "",
        "## CPU time and the fused edge product",
        "",
        "Every process runs one thread; on a shared machine wall time also counts waiting for a "
        "core, so the CPU time of the same calls is the steadier figure. `path`: `fused` = the "
        "channel-wise CG edge kernel of `tensorproducts/cg_dense_edge.py`; `generic` = the "
        "reference of the edge product (the registry product with Y broadcast over channels, "
        "the code before it); fused and generic rows of "
        "one cell were timed interleaved.",
        "",
        "| preset | product | path | atoms | ms/call wall | ms/call CPU (min-max) | "
        "atoms per CPU-s | generic / fused (CPU) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        gen = [
            g
            for g in rows
            if g["preset"] == r["preset"]
            and g["atoms"] == r["atoms"]
            and g["product"] == r["product"]
            and g.get("path") == "generic"
        ]
        speed = (
            f"{gen[0]['cpu_s'] / r['cpu_s']:.2f}"
            if gen and r.get("path") == "fused" and r["product"] == "cg-dense"
            else "-"
        )
        lines.append(
            f"| {r['preset']} | {r['product']} | {r.get('path', '-')} | {r['atoms']} | "
            f"{r['step_s'] * 1e3:.0f} | {r['cpu_s'] * 1e3:.0f} ({r['cpu_min_s'] * 1e3:.0f}-"
            f"{r['cpu_max_s'] * 1e3:.0f}) | {r['atoms_per_cpu_s']:.0f} | {speed} |"
        )
    lines += ["", f"Rows from {Path(source).name if source != 'this run' else source}."]
    if raw.get("note"):
        lines += ["", f"Note: {raw['note']}."]
    lines.append("")
    with open(path, "a") as fh:
        fh.write("\n".join(lines))


if __name__ == "__main__":
    main()
