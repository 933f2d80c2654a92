r"""``cg-dense``: the full Clebsch-Gordan tensor product, the reference variant.

For every path :math:`(l_1 p_1) \otimes (l_2 p_2) \to (l_3 p_3)` allowed by the triangle rule and
:math:`p_3 = p_1 p_2`, and every output irrep,

.. math:: z^{l_3 p_3}_k = \sum_{\text{paths} \to l_3 p_3} w_{\text{path}} \sqrt{2l_3+1}
          \sum_{i j} C^{l_1 l_2 l_3}_{ijk}\, x^{l_1 p_1}_i\, y^{l_2 p_2}_j

with :math:`C` e3nn's real Clebsch-Gordan tensor (:func:`tensorproducts.clebsch_gordan.
clebsch_gordan`, unit Frobenius norm). The :math:`\sqrt{2l_3+1}` is e3nn's default
``irrep_normalization="component"``, so each path equals the corresponding output block of
``e3nn.tensor_product(x, y)`` and, without weights (:math:`w = 1`), the output is the sum of
those blocks per output irrep.

**Algorithm.** One dense contraction per pair of input irreps: the outer product
``x1 (x) y2`` ``[N, d1 d2]`` times the CG tensors of all that pair's output degrees stacked
``[d1 d2, sum d3]`` (one matmul instead of one einsum per path). Small products
(:math:`D_1 D_2 D_{out} \le` ``FUSED_MAX``) use a single matmul over the whole outer product
instead (per-op overhead dominates there); with weights its columns are the paths' blocks,
weighted and summed by a 0/1 matrix. When that matrix is narrow (no more columns than
:math:`D_1`, :func:`x_first`), ``x`` is contracted with it first and the result summed against
``y``, which avoids the outer product. Cost per sample
:math:`\sum_{l_1 l_2} (2l_1+1)(2l_2+1) \sum_{l_3} (2l_3+1) = O(L^6)` for ``s2_irreps(L)``
inputs. Per-path weights ``weights[..., k]`` (paths in :func:`tensorproducts._irreps.cg_paths`
order) broadcast over batch and channel axes. Large batches run in blocks of samples whose outer
products fit 1 MiB (:mod:`tensorproducts._blocking`): at batch 10,000 on one pinned core,
interleaved with the one-pass form, 1.7x faster at siso L=10, 1.4x at simo L=10, 1.1-1.25x at
simo L=6 and mimo L=3-6; unchanged for small products (whose intermediates fit 4 MiB).

**Shared second input.** When ``y`` is broadcast along some axes (the spherical harmonics of an
edge shared by its ``R`` channels: ``x[E, C, :]``, ``y[E, 1, :]``), ``y`` is contracted with the
CG tensor first, once per edge: ``Y[E, d1, sum d3] = y2 @ C`` (``[d2, d1 sum d3]``), then one
batched matmul per pair ``x1[E, R, d1] @ Y[E, d1, sum d3]``. Cost per edge
:math:`d_1 d_2 \sum d_3 + R\, d_1 \sum d_3` instead of :math:`R\, d_1 d_2 \sum d_3`, and the
broadcast ``y`` is never materialised (:class:`tensorproducts._irreps.SharedLayout`).

**With edge spherical harmonics.** The message pass of a network (features of each edge's sender
times the edge's harmonics, summed into nodes: :class:`tensorproducts.edge.EdgeProduct`) runs the
fused kernel :func:`tensorproducts.cg_dense_edge.cg_dense_edge_kernel`, registered below as this
variant's ``edge_kernel``.
"""

from __future__ import annotations

import functools
import math

import e3nn_jax as e3nn
import jax.numpy as jnp
import numpy as np

from . import _blocking, _irreps
from .cg_dense_edge import cg_dense_edge_kernel
from .clebsch_gordan import clebsch_gordan
from .registry import TensorProductSpec, register

NAME = "cg-dense"


@functools.cache
def _pair_plan(irreps1: str, irreps2: str, irreps_out: str):
    """Per input pair: slices, stacked CG matrix, and (output irrep, columns, path index)."""
    paths, pairs = _irreps.paths_by_pair(irreps1, irreps2, irreps_out)
    plan = []
    for ir1, s1, ir2, s2, pair_targets in pairs:
        mats, targets, col = [], [], 0
        for ir3, k in pair_targets:
            c = math.sqrt(2 * ir3.l + 1) * clebsch_gordan(ir1.l, ir2.l, ir3.l)
            mats.append(c.reshape(ir1.dim * ir2.dim, ir3.dim))
            targets.append((ir3, slice(col, col + ir3.dim), k))
            col += ir3.dim
        mat = np.concatenate(mats, axis=1)  # [d1 d2, sum d3]
        # y-first form [d2, d1 sum d3]: C[i, j, k] -> [j, (i, k)]
        ymat = mat.reshape(ir1.dim, ir2.dim, col).transpose(1, 0, 2).reshape(ir2.dim, -1)
        plan.append((s1, s2, mat, ymat, tuple(targets)))
    return paths, tuple(plan)


@functools.cache
def _shared_plan(irreps1: str, irreps2: str, irreps_out: str):
    """Per input-1 irrep: its slice, the y-first matrix of all its pairs ``[D2, d1 K]`` (zero rows
    for input-2 irreps a pair does not use) and the targets ``(ir3, columns of K, path)``."""
    _, plan = _pair_plan(irreps1, irreps2, irreps_out)
    d2_total = e3nn.Irreps(irreps2).dim
    groups: dict = {}
    for s1, s2, mat, _, targets in plan:
        groups.setdefault((s1.start, s1.stop), []).append((s2, mat, targets))
    out = []
    for (a, b), pairs in groups.items():
        d1, width = b - a, sum(mat.shape[1] for _, mat, _ in pairs)
        big = np.zeros((d2_total, d1, width))
        tgts, col = [], 0
        for s2, mat, targets in pairs:
            k = mat.shape[1]
            big[s2, :, col : col + k] = mat.reshape(d1, s2.stop - s2.start, k).transpose(1, 0, 2)
            tgts += [(ir3, slice(c.start + col, c.stop + col), p) for ir3, c, p in targets]
            col += k
        out.append((slice(a, b), big.reshape(d2_total, d1 * width), width, tuple(tgts)))
    return tuple(out)


def x_first(d1: int, cols: int) -> bool:
    """Whether to contract ``x`` with the CG matrix first (``x @ C[d1, d2 cols]``, then a
    multiply-and-sum with ``y``) instead of forming the outer product ``x (x) y`` ``[N, d1 d2]``:
    the same multiply-adds, and faster on one CPU thread when the output is narrow (``cols <=
    d1``, e.g. one irrep out of two irreps of the same degree: 1.4-2.4x at L = 3-8 in the
    single-in-single-out setting at batch 10,000) and much slower when it is wide (5x for
    ``s2_irreps(2L)`` outputs); below ``d1 = 5`` the outer product is as fast."""
    return 5 <= d1 and cols <= d1


# Tiny products (D1 D2 cols multiply-adds per sample at most this) contract x first in the
# feature-major layout [D, N], where every op runs along N: at batch 10,000, one pinned core,
# interleaved, 1.9-2.0x faster than the batch-major forms at siso L=1, 2 and simo L=1 (27, 125
# and 81 multiply-adds); slower above (0.68x at mimo L=1, 144; 0.38x at simo L=2, 625; 0.73x
# at siso L=3, 343), where the batch-major matmuls have long enough inner dimensions.
FEATURE_MAJOR_MAX_MACS = 125


def feature_major(d1: int, d2: int, cols: int) -> bool:
    """Whether a fused product runs x-first in the feature-major layout (see above)."""
    return d1 * d2 * cols <= FEATURE_MAJOR_MAX_MACS


# Below this many multiply-adds per sample (D1 D2 x outputs) one matmul over the whole outer
# product beats one per input pair: per-op overhead dominates small products.
FUSED_MAX = 16384


@functools.cache
def _fused_plan(irreps1: str, irreps2: str, irreps_out: str, weighted: bool):
    """One matrix over the whole outer product ``[D1 D2, cols]``: the summed output ``[.., Dout]``
    (unweighted), or one column block per path plus the path of each column (weighted)."""
    paths, plan = _pair_plan(irreps1, irreps2, irreps_out)
    d1, d2 = e3nn.Irreps(irreps1).dim, e3nn.Irreps(irreps2).dim
    outs = e3nn.Irreps(irreps_out)
    offset = {ir: sl.start for (_, ir), sl in zip(outs, outs.slices(), strict=True)}
    width = sum(ir3.dim for *_, targets in plan for ir3, _, _ in targets) if weighted else outs.dim
    big = np.zeros((d1, d2, width))
    col_path, col_out, col = [], [], 0
    for s1, s2, mat, _, targets in plan:
        blk = mat.reshape(s1.stop - s1.start, s2.stop - s2.start, -1)
        for ir3, cols, k in targets:
            if weighted:
                big[s1, s2, col : col + ir3.dim] = blk[:, :, cols]
                col_path += [k] * ir3.dim
                col_out += list(range(offset[ir3], offset[ir3] + ir3.dim))
                col += ir3.dim
            else:
                big[s1, s2, offset[ir3] : offset[ir3] + ir3.dim] += blk[:, :, cols]
    scatter = np.zeros((width, outs.dim))
    scatter[np.arange(len(col_out)), col_out] = 1.0
    return big.reshape(d1 * d2, width), np.asarray(col_path, np.int32), scatter


def cg_dense(
    x: e3nn.IrrepsArray, y: e3nn.IrrepsArray, irreps_out=None, weights=None
) -> e3nn.IrrepsArray:
    """Full CG product of ``x`` and ``y`` onto ``irreps_out`` (see module docstring)."""
    ir1, ir2, out = _irreps.resolve_irreps(x, y, irreps_out, NAME)
    paths, plan = _pair_plan(str(ir1), str(ir2), str(out))
    weights, lead_w = _irreps.optional_weights(weights, len(paths), NAME)
    layout = _irreps.shared_layout(x, y, *lead_w)
    if layout.r > 1:
        return _shared(x, y, out, weights, layout)
    xa, ya, lead, dtype = _irreps.broadcast_inputs(x, y, *lead_w)
    w = _irreps.weight_rows(weights, lead, dtype)
    fused = ir1.dim * ir2.dim * out.dim <= FUSED_MAX
    if fused:
        per_sample = ir1.dim * ir2.dim + out.dim
    else:
        per_sample = max(mat.size // mat.shape[1] + mat.shape[1] for _, _, mat, _, _ in plan)
    size = _blocking.block_size(4 * per_sample, xa.shape[0])
    fn = functools.partial(_fused if fused else _per_pair, ir1, ir2, out, dtype)
    z = _blocking.in_blocks(fn, size, xa, ya, w)
    return e3nn.IrrepsArray(out, z.reshape(lead + (out.dim,)))


def _fused(ir1, ir2, out, dtype, xa, ya, w) -> jnp.ndarray:
    """Small products: one matmul over the whole outer product (or x-first), ``[N, out.dim]``."""
    big, col_path, scatter = _fused_plan(str(ir1), str(ir2), str(out), w is not None)
    if feature_major(ir1.dim, ir2.dim, big.shape[1]):
        # feature-major [D, N]: the sum over y's components runs over contiguous rows of N
        m = jnp.asarray(big.reshape(ir1.dim, -1).T, dtype)  # [D2 cols, D1]
        xc = (m @ xa.T).reshape(ir2.dim, big.shape[1], -1)
        z = jnp.sum(xc * ya.T[:, None, :], axis=0).T
    elif x_first(ir1.dim, big.shape[1]):
        xc = xa @ jnp.asarray(big.reshape(ir1.dim, -1), dtype)  # [N, D2 cols]
        z = jnp.sum(xc.reshape(xa.shape[0], ir2.dim, -1) * ya[:, :, None], axis=1)
    else:
        outer = (xa[:, :, None] * ya[:, None, :]).reshape(xa.shape[0], -1)
        z = outer @ jnp.asarray(big, dtype)
    if w is not None:
        z = (z * w[:, col_path]) @ jnp.asarray(scatter, dtype)
    return z


def _per_pair(ir1, ir2, out, dtype, xa, ya, w) -> jnp.ndarray:
    """One outer product and matmul per pair of input irreps, ``[N, out.dim]``."""
    _, plan = _pair_plan(str(ir1), str(ir2), str(out))
    blocks: dict = {}
    for s1, s2, mat, _, targets in plan:
        x1, y2 = xa[:, s1], ya[:, s2]
        outer = (x1[:, :, None] * y2[:, None, :]).reshape(xa.shape[0], -1)
        z = outer @ jnp.asarray(mat, dtype)
        for ir3, cols, k in targets:
            zk = z[:, cols]
            if w is not None:
                zk = zk * w[:, k : k + 1]
            blocks[ir3] = zk if ir3 not in blocks else blocks[ir3] + zk
    return _irreps.assemble(out, blocks, (xa.shape[0],), dtype).array


def _shared(x, y, out, weights, layout) -> e3nn.IrrepsArray:
    """``y`` shared along ``layout``'s axes: contract ``y`` with the CG tensor first, grouping all
    pairs of one input-1 irrep into one matmul per stage."""
    dtype = jnp.result_type(x.dtype, y.dtype)
    groups = _shared_plan(str(x.irreps), str(y.irreps), str(out))
    xr = layout.rows(x.array.astype(dtype))  # [M, R, D1]
    yr = layout.y_rows(y.array.astype(dtype))  # [M, D2]
    if weights is not None:
        wr = layout.rows(weights.astype(dtype))  # [M, R, paths]
    m, r = layout.m, layout.r
    blocks: dict = {}
    for s1, big, width, targets in groups:
        yc = (yr @ jnp.asarray(big, dtype)).reshape(m, s1.stop - s1.start, width)
        z = jnp.matmul(xr[:, :, s1], yc)  # [M, R, K], batched over M
        for ir3, cols, k in targets:
            zk = z[:, :, cols]
            if weights is not None:
                zk = zk * wr[:, :, k : k + 1]
            blocks[ir3] = zk if ir3 not in blocks else blocks[ir3] + zk
    blocks = {ir: b.reshape(m * r, -1) for ir, b in blocks.items()}
    flat = _irreps.assemble(out, blocks, (m * r,), dtype).array
    return e3nn.IrrepsArray(out, layout.unrows(flat.reshape(m, r, -1)))


def cg_spec(
    name: str, apply, *, cost: str, description: str, edge_kernel=None
) -> TensorProductSpec:
    """The spec of a variant that equals ``cg-dense`` path by path: every CG path, one weight per
    path (:func:`tensorproducts._irreps.cg_paths` order), e3nn's "component" normalisation."""
    return TensorProductSpec(
        name=name,
        apply=apply,
        paths=_irreps.cg_paths,
        num_weights=_irreps.cg_num_weights,
        weight_structure="path",
        cost=cost,
        exact=True,
        tolerance=1e-12,
        description=description,
        extra={"normalisation": lambda l1, l2, l3: 1.0, "irrep_normalization": "component"},
        edge_kernel=edge_kernel,
    )


SPEC = register(
    cg_spec(
        NAME,
        cg_dense,
        cost="O(L^6)",
        description="full Clebsch-Gordan product, one dense matmul per input pair (reference)",
        edge_kernel=cg_dense_edge_kernel,
    )
)
