"""Benchmark Facet presets: energy+forces+stress throughput, compile time and cost split.

For every preset (and, optionally, every product) on rattled diamond-Si cells of 64 and 216 atoms:

* compile time of the jitted ``predict`` (first call minus one steady call);
* throughput in atoms/s of energy + forces + stress (median of ``--repeats`` timed calls after a
  warm-up, with the spread), ``block_until_ready`` on every call;
* cost split of one forward + backward pass between the radial map, the message product (gather,
  product, scatter), the grid mixing and the readout, each timed as its own jitted
  value-and-gradient over the same inputs (fractions of their sum).

Usage::

    python scripts/bench_model.py                       # all presets, their default product
    python scripts/bench_model.py --products cg-dense so2 gaunt-grid --json bench.json

Prints a table plus JAX/device versions; ``--json`` writes the rows.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import e3nn_jax as e3nn
import jax
import jax.numpy as jnp
import numpy as np
from ase.build import bulk
from flax import nnx

import facet
from facet.data import collate
from facet.data.neighbors import graph_from_atoms
from facet.nn.interaction import rms_norm
from facet.nn.linear import natural_irreps
from facet.nn.presets import PRESETS, count_parameters
from facet.nn.radial import RADIAL_BASES, polynomial_envelope
from facet.physics import predict


def cell(n_rep: int):
    atoms = bulk("Si", "diamond", a=5.43, cubic=True) * (n_rep, n_rep, n_rep)
    atoms.rattle(0.05, seed=0)
    return atoms


def timed(fn, *args, repeats=10):
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    spread = (min(times), max(times))
    return first - med, med, spread


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
    w_in = [jnp.asarray(b.radial(feats0)) for b in blocks]

    def product(model, hs, ws):
        tot = 0.0
        for b, h, w in zip(model.blocks, hs, ws, strict=True):
            w = w.reshape(sh.shape[0], b.channels, b.msg.num_radial)
            m = b.msg(h[batch.senders], sh, w)
            tot = tot + jnp.sum(jax.ops.segment_sum(m, batch.receivers, num_segments=n) ** 2)
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", nargs="*", default=list(PRESETS))
    ap.add_argument("--products", nargs="*", default=None, help="default: each preset's own")
    ap.add_argument("--sizes", nargs="*", type=int, default=[2, 3], help="diamond-Si repeats")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    print(
        f"jax {jax.__version__} on {jax.devices()[0].platform} ({platform.processor() or '?'}), "
        f"{args.dtype}"
    )
    rows = []
    for preset in args.presets:
        for product in args.products or [PRESETS[preset].product]:
            model = facet.create_model(preset, product=product, dtype=args.dtype)
            run = nnx.jit(lambda m, b: predict(m, b, forces=True, stress=True))
            for rep in args.sizes:
                atoms = cell(rep)
                g = graph_from_atoms(atoms, model.cutoff)
                batch = collate([g], dtype=np.dtype(args.dtype))
                compile_s, med, spread = timed(run, model, batch, repeats=args.repeats)
                split = cost_split(model, batch, max(3, args.repeats // 2))
                tot = sum(split.values())
                row = {
                    "preset": preset,
                    "product": product,
                    "atoms": len(atoms),
                    "edges": g.n_edge,
                    "params": count_parameters(model),
                    "compile_s": round(compile_s, 2),
                    "step_s": med,
                    "step_min_s": spread[0],
                    "step_max_s": spread[1],
                    "atoms_per_s": len(atoms) / med,
                    "split": {k: round(v / tot, 3) for k, v in split.items()},
                }
                rows.append(row)
                print(
                    f"{preset:8s} {product:12s} {len(atoms):4d} atoms {g.n_edge:6d} edges  "
                    f"compile {compile_s:6.1f} s  step {med * 1e3:8.1f} ms "
                    f"[{spread[0] * 1e3:.1f}-{spread[1] * 1e3:.1f}]  "
                    f"{len(atoms) / med:9.0f} atoms/s  split "
                    + " ".join(f"{k}={v:.0%}" for k, v in row["split"].items()),
                    flush=True,
                )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(
                {"jax": jax.__version__, "device": str(jax.devices()[0]), "rows": rows},
                fh,
                indent=1,
            )


if __name__ == "__main__":
    main()
