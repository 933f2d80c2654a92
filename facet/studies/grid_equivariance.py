"""Equivariance error and cost of the grid-mixing layer against grid resolution, per activation.

For each activation of :data:`facet.nn.grid_mixing.GRID_ACTIVATIONS` and a ladder of
Gauss-Legendre x uniform grids ``(n_beta, 2 n_beta - 1)`` (plus the exact minimal grid of the
resolution rule), this measures

* the relative equivariance error ``max |f(D x) - D f(x)| / max |f(x)|`` in float64 over random
  rotations and rotation-inversions (random weights, ``lmax`` and pseudo irreps as given);
* the cost: median seconds of a jitted forward+backward pass on ``[N, C]`` features in float32.

Usage::

    python -m facet.studies.grid_equivariance --out docs/grid_equivariance.png

Writes the PNG and a JSON file next to it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from facet.nn.grid import exact_resolution
from facet.nn.grid_mixing import GRID_ACTIVATIONS, GridMixer
from facet.nn.linear import feature_irreps


def rotations(n, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        q, r = np.linalg.qr(rng.normal(size=(3, 3)))
        q = q * np.sign(np.diag(r))
        q = q * np.sign(np.linalg.det(q))
        out.append(q if k % 2 == 0 else -q)  # alternate proper / improper
    return out


def error(act, res, lmax, pseudo, channels, hidden):
    with jax.enable_x64(True):
        m = GridMixer(
            channels,
            hidden,
            lmax,
            pseudo,
            activation=act,
            resolution=res,
            rngs=nnx.Rngs(0),
            dtype=jnp.float64,
        )
        irreps = feature_irreps(lmax, pseudo)
        x = jax.random.normal(jax.random.PRNGKey(1), (32, channels, irreps.dim), jnp.float64)
        f = nnx.jit(lambda m, x: m(x))
        y = f(m, x)
        worst = 0.0
        for q in rotations(6):
            d = irreps.D_from_matrix(jnp.asarray(q))
            worst = max(worst, float(jnp.abs(f(m, x @ d.T) - y @ d.T).max() / jnp.abs(y).max()))
    return worst


def cost(act, res, lmax, pseudo, channels, hidden, n_nodes, repeats=7):
    m = GridMixer(channels, hidden, lmax, pseudo, activation=act, resolution=res, rngs=nnx.Rngs(0))
    irreps = feature_irreps(lmax, pseudo)
    x = jax.random.normal(jax.random.PRNGKey(1), (n_nodes, channels, irreps.dim))
    g = nnx.jit(lambda m, x: jax.value_and_grad(lambda x: jnp.sum(m(x) ** 2))(x))
    jax.block_until_ready(g(m, x))
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(g(m, x))
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lmax", type=int, default=2)
    ap.add_argument("--pseudo", action="store_true", help="include pseudo irreps")
    ap.add_argument("--channels", type=int, default=72)
    ap.add_argument("--hidden", type=int, default=72)
    ap.add_argument("--nodes", type=int, default=512)
    ap.add_argument("--max-beta", type=int, default=24)
    ap.add_argument("--out", default="docs/grid_equivariance.png")
    args = ap.parse_args()

    exact = exact_resolution(args.lmax, 2)
    ladder = sorted({(b, 2 * b - 1) for b in range(2, args.max_beta + 1, 2)} | {exact})
    rows = []
    for act in GRID_ACTIVATIONS:
        for res in ladder:
            e = error(act, res, args.lmax, args.pseudo, 8, 8)
            c = cost(act, res, args.lmax, args.pseudo, args.channels, args.hidden, args.nodes)
            rows.append(
                {
                    "activation": act,
                    "n_beta": res[0],
                    "n_alpha": res[1],
                    "points": res[0] * res[1],
                    "error": e,
                    "seconds": c,
                }
            )
            print(
                f"{act:10s} {res!s:10s} points {res[0] * res[1]:5d}  error {e:.2e}  "
                f"fwd+bwd {c * 1e3:.2f} ms",
                flush=True,
            )

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for act in GRID_ACTIVATIONS:
        sel = [r for r in rows if r["activation"] == act]
        pts = [r["points"] for r in sel]
        ax1.loglog(pts, [max(r["error"], 1e-17) for r in sel], "o-", label=act)
        ax2.loglog(pts, [r["seconds"] * 1e3 for r in sel], "o-", label=act)
    ax1.axvline(exact[0] * exact[1], color="gray", ls=":", label=f"exact rule {exact}")
    ax1.set_xlabel("grid points (n_beta x n_alpha)")
    ax1.set_ylabel("relative equivariance error (float64)")
    ax1.set_title(f"lmax={args.lmax}, pseudo={args.pseudo}: rotations + inversion")
    ax1.legend()
    ax2.set_xlabel("grid points")
    ax2.set_ylabel(f"fwd+bwd ms ({args.nodes} nodes x {args.channels} ch, float32)")
    ax2.set_title(f"cost on {jax.devices()[0].platform}")
    ax2.legend()
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    with open(args.out.rsplit(".", 1)[0] + ".json", "w") as fh:
        json.dump({"jax": jax.__version__, "args": vars(args), "rows": rows}, fh, indent=1)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
