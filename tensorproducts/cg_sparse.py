r"""``cg-sparse``: the Clebsch-Gordan product using the real-basis selection rule.

Same output as ``cg-dense`` (same per-path weights, "component" normalisation):

.. math:: z^{l_3}_{m_3} = \sum_{\text{paths}} w_{\text{path}} \sqrt{2l_3+1}
          \sum_{(m_1, m_2) \in S(m_3)} C^{l_1 l_2 l_3}_{m_1 m_2 m_3}\, x^{l_1}_{m_1} y^{l_2}_{m_2}.

**Selection rule.** In the complex basis :math:`m_3 = m_1 + m_2`; e3nn's real basis mixes
:math:`\pm m`, so a real coefficient is non-zero only if :math:`|m_3| = |m_1| + |m_2|` or
:math:`|m_3| = ||m_1| - |m_2||` (with a sign condition that halves the candidates again). The set
:math:`S(m_3)` of contributing :math:`(m_1, m_2)` has about :math:`2(2l_1+1)(2l_2+1)/(2l_3+1)`
elements and, crucially, **does not depend on** :math:`l_3`.

**Algorithm.** For each input pair :math:`(l_1, l_2)` the contributing products
:math:`x_{m_1} y_{m_2}` are gathered once into ``G[N, m3, t]`` (``t`` runs over :math:`S(m_3)`
padded to the largest set; padding points at a zero), then one batched matmul over :math:`m_3`
with a dense ``[m3, t, l3]`` coefficient table produces every output degree of that pair at
once. Cost per pair :math:`O(\sum_{m_3} |S(m_3)|\, n_{l_3}) = O(l_1 l_2 \min(l_1, l_2))`, i.e.
:math:`O(L^5)` in total for ``s2_irreps(L)`` inputs against :math:`O(L^6)` for ``cg-dense``; no
masked dense gathers, no scatter.

**Cache blocking.** The gathered ``G`` is the largest intermediate (``[m3, t, N]``: 3 KiB per
sample at siso L=10). Large batches are evaluated in blocks of samples whose ``G`` fits 1 MiB
(:mod:`tensorproducts._blocking`), so the matmul reads ``G`` from cache. Single-in-single-out at
batch 10,000, one pinned core, interleaved with the one-pass form: about 1.6x faster at L = 8
and 10 (siso L=10: 4.6 against 15-17 ms).
"""

from __future__ import annotations

import functools
import math

import e3nn_jax as e3nn
import jax
import jax.numpy as jnp
import numpy as np

from . import _blocking, _irreps
from .cg_dense import cg_spec
from .clebsch_gordan import clebsch_gordan
from .registry import register

NAME = "cg-sparse"


def nonzero_pattern(l1: int, l2: int, l3: int) -> np.ndarray:
    """``(k, 3)`` indices ``(m1+l1, m2+l2, m3+l3)`` of the non-zero real CG coefficients."""
    return np.argwhere(np.abs(clebsch_gordan(l1, l2, l3)) > 1e-14)


@functools.cache
def _pair_plan(l1: int, l2: int, l3s: tuple[int, ...]):
    """Gather indices ``[2M+1, T]`` into the ``d1 d2`` outer product and coefficients."""
    big = max(l3s)
    d2 = 2 * l2 + 1
    sets: list[set] = [set() for _ in range(2 * big + 1)]
    for l3 in l3s:
        for i, j, k in nonzero_pattern(l1, l2, l3):
            sets[k - l3 + big].add(i * d2 + j)
    width = max(1, max(len(s) for s in sets))
    # padding slots point at an appended zero row of x (and row 0 of y): they contribute 0
    index1 = np.full((2 * big + 1, width), 2 * l1 + 1, dtype=np.int32)
    index2 = np.zeros((2 * big + 1, width), dtype=np.int32)
    coef = np.zeros((2 * big + 1, width, len(l3s)))
    for mi, s in enumerate(sets):
        for t, flat in enumerate(sorted(s)):
            i, j = divmod(flat, d2)
            index1[mi, t], index2[mi, t] = i, j
            for c, l3 in enumerate(l3s):
                k = mi - big + l3
                if 0 <= k <= 2 * l3:
                    coef[mi, t, c] = math.sqrt(2 * l3 + 1) * clebsch_gordan(l1, l2, l3)[i, j, k]
    # [m3, c, t]: the batched matmul below is then a plain (c x t) @ (t x N) per m3
    return index1, index2, np.ascontiguousarray(coef.transpose(0, 2, 1))


@functools.cache
def _plan(irreps1: str, irreps2: str, irreps_out: str):
    paths, pairs = _irreps.paths_by_pair(irreps1, irreps2, irreps_out)
    plan = []
    for ir1, s1, ir2, s2, targets in pairs:
        l3s = tuple(ir3.l for ir3, _ in targets)
        index1, index2, coef = _pair_plan(ir1.l, ir2.l, l3s)
        plan.append((s1, s2, index1, index2, coef, max(l3s), targets))
    return paths, tuple(plan)


def cg_sparse(
    x: e3nn.IrrepsArray, y: e3nn.IrrepsArray, irreps_out=None, weights=None
) -> e3nn.IrrepsArray:
    """CG product of ``x`` and ``y`` via the selection rule (equal to ``cg-dense``)."""
    ir1, ir2, out = _irreps.resolve_irreps(x, y, irreps_out, NAME)
    paths, plan = _plan(str(ir1), str(ir2), str(out))
    weights, lead_w = _irreps.optional_weights(weights, len(paths), NAME)
    xa, ya, lead, dtype = _irreps.broadcast_inputs(x, y, *lead_w)
    n = xa.shape[0]
    wa = _irreps.weight_rows(weights, lead, dtype)
    per_sample = 4 * sum(index1.size for _, _, index1, *_ in plan)  # float32 gathers G
    size = _blocking.block_size(per_sample, n)
    blocks = _blocking.in_blocks(functools.partial(_products, plan, out, dtype), size, xa, ya, wa)
    return e3nn.IrrepsArray(out, blocks.reshape(lead + (out.dim,)))


def _products(plan, out, dtype, xa, ya, w):
    """The product of a block ``[N, d]`` of samples, ``[N, out.dim]``."""
    n = xa.shape[0]
    # Feature-major layout [dim, N]: every gather below copies whole rows of N contiguous values.
    xt, yt = xa.T, ya.T
    wt = None if w is None else w.T
    blocks: dict = {}
    for s1, s2, index1, index2, coef, big, targets in plan:
        x1 = jnp.concatenate([xt[s1], jnp.zeros((1, n), dtype)], axis=0)
        g = x1[index1] * yt[s2][index2]  # [m3, t, N]: the products x_m1 y_m2 that reach m3
        z = jax.lax.dot_general(  # [m3, c, N], batched over m3
            jnp.asarray(coef, dtype), g, (((2,), (1,)), ((0,), (0,)))
        )
        for c, (ir3, k) in enumerate(targets):
            zk = z[big - ir3.l : big + ir3.l + 1, c]  # [2l3+1, N]
            if wt is not None:
                zk = zk * wt[k]
            blocks[ir3] = zk if ir3 not in blocks else blocks[ir3] + zk
    blocks = {ir: b.T for ir, b in blocks.items()}
    return _irreps.assemble(out, blocks, (n,), dtype).array


SPEC = register(
    cg_spec(
        NAME,
        cg_sparse,
        cost="O(L^5)",
        description="full CG product via the real-basis selection rule, per-m3 batched matmuls",
    )
)
