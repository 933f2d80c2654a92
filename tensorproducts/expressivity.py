r"""Expressivity of a tensor-product variant, computed from the variant itself (never tabulated).

Xie, Daigavane, Kotak, Smidt, "The Price of Freedom", ICML 2025, sec. 3 (paths) and sec. 4
(interactability).

**Realised paths.** For every input irrep pair :math:`(l_1 p_1), (l_2 p_2)` and output irrep
:math:`(l_3 p_3)` the product restricted to that path is a bilinear equivariant map; by Schur's
lemma it is a scalar multiple of the CG path. :func:`path_ranks` feeds inputs supported on one
irrep each (``samples`` random draws per pair, all pairs in one batched call) and takes the rank of
the :math:`(\text{samples} \times (2l_3+1))` output block: 0 means the path is absent, otherwise it
equals :math:`\min(\text{samples}, 2l_3+1)`. For variants that need spherical-harmonics input
(``so2``) the second input is the SH of random directions and the :math:`l_2` contribution is
isolated as :math:`f(x, y + y_{l_2}) - f(x, y)` (exact: these products are linear in each degree
block of ``y`` at fixed direction).

**Interactability.** In the "linear, product, linear" setting with multiplicity 1 the linear
layers are one scalar per irrep: :math:`z = W_3 \cdot \mathrm{TP}(W_1 x, W_2 y)`. The
interactability is the rank of the Jacobian of :math:`z` (over several random inputs) with
respect to all weights :math:`(W_1, W_2, W_3)` and, optionally, the product's own internal
weights (per-path CG weights, per-m SO(2) weights). For a product with fixed coefficients the
rank is the number of *active* weights (those whose Jacobian column is not zero) minus the two
rescaling symmetries :math:`(W_1, W_3) \to (aW_1, W_3/a)` and :math:`(W_2, W_3) \to (bW_2, W_3/b)`.
Known values: Gaunt and matrix products reach :math:`4L+1` for ``s2_irreps(L)`` inputs and
``s2_irreps(2L)`` outputs (all :math:`(L+1)+(L+1)+(2L+1)` weights active). The scalar-signal
vector-Gaunt product (``vector-gaunt-grid``) reaches :math:`4L-3`: its paths need
:math:`l_1+l_2+l_3` odd, so the degree-0 inputs (no surface gradient) and the outputs of degree
0 and :math:`2L` (unreachable) leave **4 inert weights**, :math:`(4L+3-4)-2`. The paper's vector
Gaunt product takes vector-spherical-harmonic inputs (up to three irreps per degree); the
research code's product measured this way (Cartesian components of degree :math:`j`) has
:math:`12j+3` per-irrep weights and rank :math:`12j+1` at :math:`j = 1, 2, 3`
(docs/tensorproducts.md), again all active weights minus 2.
:attr:`Interactability.inert` lists the inert weights.

Ranks use the singular values with relative threshold :math:`\sqrt{\epsilon}` of the working dtype;
:func:`interactability` also returns the spectral gap so a reader can see the decision is clear.
Run in float64 (``jax.enable_x64``) for the cleanest gaps.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import e3nn_jax as e3nn
import jax
import jax.numpy as jnp
import numpy as np

from .registry import TensorProductSpec, get

__all__ = [
    "any_parity_irreps",
    "path_ranks",
    "realised_paths",
    "interactability",
    "Interactability",
    "expressivity_rows",
]


def any_parity_irreps(lmax: int) -> e3nn.Irreps:
    """``0e + 0o + 1e + 1o + ... + lmax e + lmax o``: outputs "of any parity"."""
    return e3nn.Irreps([(1, (l, p)) for l in range(lmax + 1) for p in (1, -1)])


def _spec(variant) -> TensorProductSpec:
    return get(variant) if isinstance(variant, str) else variant


def _block_masks(irreps: e3nn.Irreps) -> np.ndarray:
    """``(num_irreps, dim)`` 0/1 masks selecting each irrep block."""
    masks = np.zeros((len(irreps), irreps.dim))
    for i, sl in enumerate(irreps.slices()):
        masks[i, sl] = 1.0
    return masks


def _rank(mat: np.ndarray, rel: float) -> int:
    s = np.linalg.svd(mat, compute_uv=False)
    if s.size == 0 or s[0] == 0:
        return 0
    return int((s > rel * s[0]).sum())


def _sh_inputs(irreps2: e3nn.Irreps, n: int, key, dtype) -> jnp.ndarray:
    dirs = jax.random.normal(key, (n, 3), dtype)
    return e3nn.spherical_harmonics(irreps2, dirs, normalize=True).array


def path_ranks(
    variant, irreps1, irreps2, irreps_out, *, samples: int = 3, seed: int = 0
) -> dict[tuple, int]:
    """``{(l1, p1, l2, p2, l3, p3): rank}`` for every triple of input/output irreps with the
    triangle rule and ``p3 = p1 p2`` (see module docstring). One jit-compiled batched call."""
    spec = _spec(variant)
    ir1, ir2, out = (e3nn.Irreps(i) for i in (irreps1, irreps2, irreps_out))
    dtype = jnp.zeros(()).dtype  # float64 under jax.enable_x64
    k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
    n1, n2 = len(ir1), len(ir2)
    m1, m2 = _block_masks(ir1), _block_masks(ir2)
    # batch index (a, b, s): x supported on irrep a of x, y on irrep b of y, sample s
    xr = jax.random.normal(k1, (n1, n2, samples, ir1.dim), dtype) * m1[:, None, None, :]
    f = jax.jit(lambda a, b: spec.apply(e3nn.IrrepsArray(ir1, a), e3nn.IrrepsArray(ir2, b), out))
    if spec.requires_sh_input:
        base = _sh_inputs(ir2, samples, k2, dtype)  # (s, dim2)
        yb = jnp.broadcast_to(base, (n1, n2, samples, ir2.dim))
        yd = yb + yb * m2[None, :, None, :]  # block b doubled: difference isolates degree b
        z = f(xr, yd).array - f(xr, yb).array
    else:
        yr = jax.random.normal(k2, (n1, n2, samples, ir2.dim), dtype) * m2[None, :, None, :]
        z = f(xr, yr).array
    z = np.asarray(z, dtype=np.float64)
    rel = float(np.sqrt(jnp.finfo(dtype).eps))
    scale = np.abs(z).max() or 1.0
    ranks = {}
    for a, (_, i1) in enumerate(ir1):
        for b, (_, i2) in enumerate(ir2):
            for sl, (_, i3) in zip(out.slices(), out, strict=True):
                if not (abs(i1.l - i2.l) <= i3.l <= i1.l + i2.l) or i3.p != i1.p * i2.p:
                    continue
                blk = z[a, b, :, sl]
                # absolute floor relative to the whole output: a path is absent when its block
                # is round-off compared with the product's scale
                ranks[(i1.l, i1.p, i2.l, i2.p, i3.l, i3.p)] = (
                    0 if np.abs(blk).max() <= rel * scale else _rank(blk, rel)
                )
    return ranks


def realised_paths(variant, irreps1, irreps2, irreps_out, **kw) -> list[tuple]:
    """The paths with non-zero rank (see :func:`path_ranks`)."""
    return [p for p, r in path_ranks(variant, irreps1, irreps2, irreps_out, **kw).items() if r]


@dataclass(frozen=True)
class Interactability:
    """Result of :func:`interactability`."""

    rank: int
    num_weights: int  # total weights the Jacobian was taken against
    gap: float  # smallest kept singular value / largest dropped one (inf when none dropped)
    # ("in1" | "in2" | "out" | "internal", index): weights whose Jacobian column is zero
    inert: tuple = ()


def interactability(
    variant,
    irreps1,
    irreps2,
    irreps_out,
    *,
    samples: int = 4,
    include_internal: bool = True,
    seed: int = 0,
) -> Interactability:
    """Rank of d(output)/d(weights) in the linear-product-linear setting (module docstring)."""
    spec = _spec(variant)
    ir1, ir2, out = (e3nn.Irreps(i) for i in (irreps1, irreps2, irreps_out))
    dtype = jnp.zeros(()).dtype
    n1, n2, n3 = len(ir1), len(ir2), len(out)
    nint = spec.num_weights(ir1, ir2, out) if include_internal else 0
    keys = jax.random.split(jax.random.PRNGKey(seed), 4)
    a = jax.random.normal(keys[0], (samples, ir1.dim), dtype)
    if spec.requires_sh_input:
        b = _sh_inputs(ir2, samples, keys[1], dtype)
    else:
        b = jax.random.normal(keys[1], (samples, ir2.dim), dtype)
    # positive weights keep an SH input's direction (so2 reads it from the degree-1 block)
    w0 = 0.5 + jnp.abs(jax.random.normal(keys[2], (n1 + n2 + n3 + nint,), dtype))
    e1 = _expand(ir1)
    e2 = _expand(ir2)
    e3 = _expand(out)

    def f(w):
        w1, w2, w3, wi = w[:n1], w[n1 : n1 + n2], w[n1 + n2 : n1 + n2 + n3], w[n1 + n2 + n3 :]
        x = e3nn.IrrepsArray(ir1, a * w1[e1])
        y = e3nn.IrrepsArray(ir2, b * w2[e2])
        z = spec.apply(x, y, out, weights=wi if nint else None)
        return (z.array * w3[e3]).reshape(-1)

    jac = np.asarray(jax.jit(jax.jacfwd(f))(w0), dtype=np.float64)
    s = np.linalg.svd(jac, compute_uv=False)
    rel = float(np.sqrt(jnp.finfo(dtype).eps))
    keep = s > rel * s[0] if s.size and s[0] > 0 else np.zeros(s.shape, bool)
    rank = int(keep.sum())
    gap = float(s[rank - 1] / s[rank]) if 0 < rank < s.size and s[rank] > 0 else float("inf")
    cols = np.linalg.norm(jac, axis=0)
    names = [("in1", i) for i in range(n1)] + [("in2", i) for i in range(n2)]
    names += [("out", i) for i in range(n3)] + [("internal", i) for i in range(nint)]
    inert = tuple(nm for nm, c in zip(names, cols, strict=True) if c <= rel * cols.max())
    return Interactability(rank=rank, num_weights=int(w0.size), gap=gap, inert=inert)


@functools.cache
def _expand(irreps: e3nn.Irreps) -> np.ndarray:
    """Component -> irrep index (to broadcast one weight per irrep over its components)."""
    return np.repeat(np.arange(len(irreps)), [ir.dim for _, ir in irreps]).astype(np.int32)


def expressivity_rows(variants, lmaxes, *, interact_lmax: int = 4) -> list[dict]:
    """Rows ``{variant, L, paths, cg_paths, interactability, ...}`` for the report.

    Inputs ``s2_irreps(L)`` (for ``so2`` the second input is ``s2_irreps(L)`` of an edge), paths
    counted against outputs of any parity up to ``2L``; interactability (without internal
    weights, and with them) against ``s2_irreps(2L, p_val)`` for the parity class ``p_val = +-1``
    giving the larger rank, for ``L <= interact_lmax``.
    """
    rows = []
    for name in variants:
        spec = _spec(name)
        for lmax in lmaxes:
            s2 = e3nn.s2_irreps(lmax)
            ranks = path_ranks(spec, s2, s2, any_parity_irreps(2 * lmax))
            row = {
                "variant": spec.name,
                "L": lmax,
                "paths": sum(1 for r in ranks.values() if r),
                "cg_paths": len(ranks),
            }
            if lmax <= interact_lmax:
                # outputs of either parity class (vector-Gaunt's paths land on 0o + 1e + ...)
                best = None
                for p_val in (1, -1):
                    out = e3nn.s2_irreps(2 * lmax, p_val=p_val)
                    plain = interactability(spec, s2, s2, out, include_internal=False)
                    if best is None or plain.rank > best[0].rank:
                        best = (plain, out)
                plain, out = best
                row["interactability"] = plain.rank
                row["interactability_outputs"] = str(out)
                row["interactability_gap"] = plain.gap
                if spec.num_weights(s2, s2, out):
                    full = interactability(spec, s2, s2, out, include_internal=True)
                    row["interactability_internal"] = full.rank
            rows.append(row)
    return rows
