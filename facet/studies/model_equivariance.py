"""Measure the E(3) equivariance of Facet presets with random weights (issue 4's figure).

For each preset and dtype: the largest change of the energy per atom of two structures (a skewed
triclinic 4-atom cell and a 5-atom molecule) under random rotations, inversion and
rotation-inversions, and the largest force error ``|F(Qx) - Q F(x)|``.

Usage::

    python -m facet.studies.model_equivariance [--presets facet-s facet-m] [--residual-init 1.0]

``--residual-init 1.0`` makes every block act at full strength (harsher than the default init).

Reading the float32 figure: the energy itself carries float32 round-off of a few ulp of its
magnitude, so the script also prints the energy per atom, the change relative to it, and the
float32 round-off yardstick ``max |E_32(x) - E_64(x)| / atom`` (the float64 model's weights cast
to float32, the same unrotated input). A rotation error at or below that yardstick is round-off,
not a broken symmetry (the float64 figure is the test of exactness). Measured for facet-m at
``--residual-init 1.0`` (random weights, |E| ~ 39 eV/atom, |F| up to 72 eV/A): rotation change
1.5e-5 eV/atom = 3.9e-7 relative (3 ulp), float32-vs-float64 deviation without any rotation
2.2e-5 eV/atom, of which 2e-6 comes from rounding the rotated inputs to float32; float64 2.8e-14.
"""

from __future__ import annotations

import argparse

import jax
import numpy as np
from flax import nnx

import facet
from facet.data import collate
from facet.data.neighbors import graph_from_atoms
from facet.nn.presets import PRESETS
from facet.physics import predict
from facet.structures import skewed_cell, small_molecule


def structures():
    return [skewed_cell(), small_molecule()]


def transforms(n, seed=0):
    rng = np.random.default_rng(seed)
    out = [-np.eye(3)]
    for k in range(n):
        q, r = np.linalg.qr(rng.normal(size=(3, 3)))
        q = q * np.sign(np.diag(r))
        q = q * np.sign(np.linalg.det(q))
        out.append(q if k % 2 == 0 else -q)
    return out


def measure(preset, dtype, residual_init, n_rot):
    overrides = {} if residual_init is None else {"residual_init": residual_init}
    model = facet.create_model(preset, seed=0, dtype=dtype, **overrides)
    strucs = structures()
    b64 = collate([graph_from_atoms(a, model.cutoff) for a in strucs], dtype=np.float64)
    cast = lambda b: b._replace(  # noqa: E731  (rotate in float64, round once)
        positions=b.positions.astype(dtype),
        cell=b.cell.astype(dtype),
        shifts=b.shifts.astype(dtype),
    )
    run = nnx.jit(lambda m, b: predict(m, b, stress=False))
    ref = run(model, cast(b64))
    n = np.array([len(a) for a in strucs])
    de = df = 0.0
    for q in transforms(n_rot):
        b = b64._replace(positions=b64.positions @ q.T, cell=b64.cell @ q.T)
        out = run(model, cast(b))
        de = max(de, float(np.max(np.abs(np.asarray(out.energy - ref.energy)[:2]) / n)))
        df = max(df, float(np.max(np.abs(np.asarray(out.forces) - np.asarray(ref.forces) @ q.T))))
    e_atom = float(np.max(np.abs(np.asarray(ref.energy)[:2]) / n))
    return de, df, float(np.abs(np.asarray(ref.forces)).max()), e_atom


def float32_roundoff(preset, residual_init):
    """``max |E_32(x) - E_64(x)|`` per atom: the float64 model's weights cast to float32, the
    same (unrotated) input. The float32 round-off level the rotation error is compared with."""
    overrides = {} if residual_init is None else {"residual_init": residual_init}
    strucs = structures()
    n = np.array([len(a) for a in strucs])
    with jax.enable_x64(True):
        m64 = facet.create_model(preset, seed=0, dtype="float64", **overrides)
        b = collate([graph_from_atoms(a, m64.cutoff) for a in strucs], dtype=np.float64)
        b = b._replace(
            positions=b.positions.astype(np.float32).astype(np.float64),
            cell=b.cell.astype(np.float32).astype(np.float64),
        )
        e64 = np.asarray(
            nnx.jit(lambda m, b: predict(m, b, forces=False, stress=False).energy)(m64, b)
        )[:2]
        state = jax.tree.map(lambda a: np.asarray(a, np.float32), nnx.state(m64))
    m32 = facet.create_model(preset, seed=0, dtype="float32", **overrides)
    nnx.update(m32, state)
    b32 = b._replace(
        positions=b.positions.astype(np.float32),
        cell=b.cell.astype(np.float32),
        shifts=b.shifts.astype(np.float32),
    )
    e32 = np.asarray(
        nnx.jit(lambda m, b: predict(m, b, forces=False, stress=False).energy)(m32, b32)
    )[:2]
    return float(np.max(np.abs(e32 - e64) / n))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", nargs="*", default=list(PRESETS))
    ap.add_argument("--residual-init", type=float, default=None)
    ap.add_argument("--rotations", type=int, default=8)
    args = ap.parse_args()
    for preset in args.presets:
        for dtype in ("float32", "float64"):
            with jax.enable_x64(dtype == "float64"):
                de, df, fmax, e_atom = measure(preset, dtype, args.residual_init, args.rotations)
            extra = ""
            if dtype == "float32":
                r = float32_roundoff(preset, args.residual_init)
                extra = f"; float32 round-off |E32-E64|/atom = {r:.2e} eV"
            print(
                f"{preset:8s} {dtype}: max |dE|/atom = {de:.2e} eV ({de / e_atom:.1e} of "
                f"|E|/atom = {e_atom:.1f} eV), max |dF| = {df:.2e} eV/A "
                f"(max |F| = {fmax:.2f} eV/A){extra}",
                flush=True,
            )


if __name__ == "__main__":
    main()
