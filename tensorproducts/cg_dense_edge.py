r"""The fused kernel of ``cg-dense`` for products with edge spherical harmonics.

:class:`tensorproducts.edge.EdgeProduct` runs it for the ``cg-dense`` variant (registered as its
``edge_kernel``); :meth:`tensorproducts.edge.EdgeProduct.reference` is the definition it equals
(values and gradients, tests/tensorproducts/test_edge.py).

In a message :math:`\mathrm{TP}(x_j, Y(\hat r_{ij}); w_{ij})` the second input is the same
:math:`Y(\hat r)` for every channel. The generic product (:func:`tensorproducts.cg_dense.cg_dense`)
contracts :math:`Y` with the CG tensors once per edge already, but works channels-major and
materialises the gathered features and the products of all edges. Here, contracting :math:`Y`
with the CG tensors first, once per edge, removes the channel factor from that part (the
channel-wise product with spherical harmonics of NequIP, Batzner et al., Nat. Commun. 13, 2453
(2022)):

.. math::

    T^{(p)}_{e, m_1 m_3} &= \sqrt{2 l_3 + 1} \sum_{m_2} C^{l_1 l_2 l_3}_{m_1 m_2 m_3}
        Y_{l_2 m_2}(\hat r_e) \qquad \text{(independent of the channel)}, \\
    z_{e, (l_3 p_3) m_3, c} &= \sum_{p \to (l_3 p_3)} w_{e p c}
        \sum_{m_1} x_{e, (l_1 p_1) m_1, c} \, T^{(p)}_{e, m_1 m_3} ,

with :math:`C` e3nn's real Clebsch-Gordan tensor (unit Frobenius norm), paths
:math:`p = (l_1 p_1) \otimes (l_2 p_2) \to (l_3 p_3)` and their weights in
:func:`tensorproducts._irreps.cg_paths` order, at :math:`O(C \sum_p d_1 d_3)` per edge plus a
channel-independent :math:`O(D_Y \sum_p d_1 d_3)`.

**Layout and algorithm (choices of this kernel, invisible to its callers).** Edge arrays are
*channels-minor*: ``x[E, D_in, C]``, ``w[E, P, C]``, products ``[E, D_out, C]``, so that every
elementwise step runs along contiguous channels; the transposes happen on node arrays and on the
weight matrix, which are smaller than edge arrays. Paths are grouped by input irrep ``(l1 p1)``:
one matmul ``Y[E, D_Y] @ B[D_Y, d1 * cols]`` (constant table ``B``) gives ``T[E, d1, cols]`` for
all paths of the group side by side, one contraction ``u[e, cols, c] = sum_m1 T[e, m1, cols]
x[e, m1, c]`` applies them, and each path's ``d3`` columns are scaled by its weight and added to
its output irrep. Measured on one CPU thread (facet-s and facet-m sizes, forward and backward)
this beat grouping by output irrep, gathers of the rows and broadcast-and-sum forms (see
docs/benchmarks/model/). Edges run in blocks (:func:`tensorproducts.edge.sum_over_edges`). Tables
are built once in NumPy and cached.

**Derivatives.** Per group the product is trilinear in ``(T, x, w)``, and its derivatives of
every order are three contractions (apply, its transpose over the columns, and a contraction
over channels), each a ``custom_vjp`` whose reverse rule is made of the others, so a training
step's second derivative runs the same three fast forms. Against the earlier hand-written
first-order rule (:func:`cg_edge_product_paths`, one batched ``dot`` per path, differentiated
again by plain autodiff) the facet-m training step at 129/4096/9 is 2.16x faster (5 ABBA rounds,
one pinned core: 3.17 against 6.82 s; docs/training.md).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import math
from dataclasses import dataclass

import e3nn_jax as e3nn
import jax
import jax.numpy as jnp
import numpy as np

from ._irreps import cg_paths
from .clebsch_gordan import clebsch_gordan
from .edge import EdgeProduct, scoped, sum_over_edges

__all__ = [
    "CGEdgePlan", "cg_edge_plan", "cg_edge_product", "cg_dense_edge_kernel", "cg_edge_rule"
]


@dataclass(frozen=True, eq=False)
class _InGroup:
    """All paths leaving one input irrep."""

    rows: slice  # the input irrep's components in x
    table: np.ndarray  # [D_Y, d1, cols]: sqrt(2 l3 + 1) C[m1, m2, m3] of each path, side by side
    paths: tuple  # per path: (path index, columns in the group, index of its output irrep)


@dataclass(frozen=True, eq=False)
class CGEdgePlan:
    """Constant tables of the fused CG edge product (see :func:`cg_edge_plan`)."""

    num_paths: int
    out_dims: tuple[int, ...]  # 2 l3 + 1 of each output irrep, in the order of irreps_out
    groups: tuple[_InGroup, ...]


@functools.cache
def cg_edge_plan(irreps_in: str, irreps_sh: str, irreps_out: str) -> CGEdgePlan:
    """Tables for ``x[irreps_in] (x) Y[irreps_sh] -> irreps_out`` (multiplicity one each; every
    output irrep must be reachable; paths in ``cg_paths`` order, as ``cg-dense``)."""
    ir_in, ir_sh, ir_out = e3nn.Irreps(irreps_in), e3nn.Irreps(irreps_sh), e3nn.Irreps(irreps_out)
    paths = cg_paths(ir_in, ir_sh, ir_out)
    off_sh = {(ir.l, ir.p): s.start for (_, ir), s in zip(ir_sh, ir_sh.slices(), strict=True)}
    out_index = {(ir.l, ir.p): i for i, (_, ir) in enumerate(ir_out)}
    reached = set()
    groups = []
    for (_, ir1), rows in zip(ir_in, ir_in.slices(), strict=True):
        blocks, group_paths, col = [], [], 0
        for k, (l1, p1, l2, p2, l3, p3) in enumerate(paths):
            if (l1, p1) != (ir1.l, ir1.p):
                continue
            d2, d3 = 2 * l2 + 1, 2 * l3 + 1
            cg = math.sqrt(d3) * clebsch_gordan(l1, l2, l3)  # [d1, d2, d3]
            blk = np.zeros((ir_sh.dim, ir1.dim, d3))
            blk[off_sh[(l2, p2)] : off_sh[(l2, p2)] + d2] = np.transpose(cg, (1, 0, 2))
            blocks.append(blk)
            group_paths.append((k, slice(col, col + d3), out_index[(l3, p3)]))
            reached.add((l3, p3))
            col += d3
        if blocks:
            groups.append(_InGroup(rows, np.concatenate(blocks, axis=2), tuple(group_paths)))
    missing = [str(ir) for _, ir in ir_out if (ir.l, ir.p) not in reached]
    if missing:
        raise ValueError(
            f"cg edge product: output irreps {missing} unreachable from {ir_in} x {ir_sh}"
        )
    return CGEdgePlan(len(paths), tuple(ir.dim for _, ir in ir_out), tuple(groups))


def _out_rows(plan: CGEdgePlan) -> list[slice]:
    off = np.concatenate([[0], np.cumsum(plan.out_dims)])
    return [slice(int(off[i]), int(off[i + 1])) for i in range(len(plan.out_dims))]


def _apply_paths(t, x):
    """``u[e, k, c] = sum_a t[e, a, k] x[e, a, c]`` as ``d1 <= 7`` broadcast products: one loop
    over contiguous channels that XLA:CPU vectorises, where a batched ``dot`` runs one tiny
    matrix product per edge (2.5-10x slower on one thread)."""
    u = t[:, 0, :, None] * x[:, 0, None, :]
    for a in range(1, t.shape[1]):
        u = u + t[:, a, :, None] * x[:, a, None, :]
    return u


def _forward(x, sh, w, plan: CGEdgePlan):
    acc: list = [None] * len(plan.out_dims)
    for g in plan.groups:
        t = jnp.einsum("es,sak->eak", sh, jnp.asarray(g.table, x.dtype))
        u = _apply_paths(t, x[:, g.rows])
        for k, cols, i in g.paths:
            v = u[:, cols] * w[:, k : k + 1]
            acc[i] = v if acc[i] is None else acc[i] + v
    return jnp.concatenate(acc, axis=1)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def cg_edge_product_paths(x, sh, w, plan: CGEdgePlan):
    """The fused ``cg-dense`` product with the earlier reverse rule (one batched ``dot`` per
    path, differentiated again by plain autodiff): the reference of :func:`cg_edge_product`
    (same values, derivatives to round-off), kept for tests and A/B timing.

    Args:
        x: ``[E, D_in, C]`` sender features of every edge.
        sh: ``[E, D_Y]`` edge spherical harmonics.
        w: ``[E, P, C]`` per-path radial weights (``P = plan.num_paths``).
        plan: :func:`cg_edge_plan` of the three layouts.

    Returns:
        ``[E, D_out, C]`` in the layout ``irreps_out`` of the plan.

    Reverse mode uses the hand-written rule :func:`_vjp_bwd` (any order: the rule is made of
    ``dot``/elementwise operations that JAX differentiates again, so training through forces
    works); forward mode (``jax.jvp``, ``jax.jacfwd``, ``jax.hessian``) is not available
    through a ``custom_vjp``: take Hessians as ``jax.jacrev(jax.grad(f))``.
    """
    return _forward(x, sh, w, plan)


def _vjp_fwd(x, sh, w, plan):
    return _forward(x, sh, w, plan), (x, sh, w)


def _vjp_bwd(plan, res, dz):
    """Cotangents of ``(x, sh, w)``. Per path ``p: (l1) -> cols -> output i``, with
    ``q_p[e, a, c] = sum_{k in cols} T[e, a, k] dz_i[e, k, c]``:
    ``dx = sum_p w_p q_p``, ``dw_p = sum_a x_a q_p``, ``dT = sum_c x du`` with
    ``du = w_p dz_i`` on each path's columns, and ``dY = dT . table``. Written with ``dot`` and
    elementwise operations only; the autodiff transposes of the broadcast form of the forward
    pass (what differentiating :func:`_forward` would give) are 3-10x slower on CPU."""
    x, sh, w = res
    rows = _out_rows(plan)
    dxs, dws, dsh = [], [None] * plan.num_paths, None
    for g in plan.groups:
        table = jnp.asarray(g.table, x.dtype)
        t = jnp.einsum("es,sak->eak", sh, table)
        xg = x[:, g.rows]
        dus, dx = [], None
        for k, cols, i in g.paths:
            dzi, wk = dz[:, rows[i]], w[:, k : k + 1]
            dus.append(wk * dzi)
            q = jnp.einsum("eak,ekc->eac", t[:, :, cols], dzi)
            dws[k] = jnp.sum(xg * q, axis=1)
            dx = wk * q if dx is None else dx + wk * q
        dxs.append(dx)
        dt = jnp.einsum("eac,ekc->eak", xg, jnp.concatenate(dus, axis=1))
        d = jnp.einsum("eak,sak->es", dt, table)
        dsh = d if dsh is None else dsh + d
    pieces, pos = [], 0  # input irreps without a path get a zero cotangent
    for g, dx in zip(plan.groups, dxs, strict=True):
        if g.rows.start > pos:
            pieces.append(jnp.zeros((x.shape[0], g.rows.start - pos, x.shape[2]), x.dtype))
        pieces.append(dx)
        pos = g.rows.stop
    if pos < x.shape[1]:
        pieces.append(jnp.zeros((x.shape[0], x.shape[1] - pos, x.shape[2]), x.dtype))
    return jnp.concatenate(pieces, axis=1), dsh, jnp.stack(dws, axis=1)


cg_edge_product_paths.defvjp(_vjp_fwd, _vjp_bwd)


# The product is trilinear in (T, x, w) per group of paths. Its derivatives of every order are
# made of three contractions of a table-like ``t[E, a, k]`` (``a``: the ``d1`` input
# components, ``k``: the group's columns) with channels-minor arrays, each the VJP of the others:
#   apply      u[e, k, c] = sum_a t[e, a, k] x[e, a, c]
#   transpose  y[e, a, c] = sum_k t[e, a, k] v[e, k, c]
#   channels   s[e, a, k] = sum_c x[e, a, c] v[e, k, c]
# Giving each its own VJP in terms of the others keeps every order of derivative on the form
# that is fastest on one CPU thread for it (apply: broadcast products over ``a``; transpose and
# channels: batched ``dot``); plain autodiff of the forward form would transpose the broadcast
# products into slow reductions, and autodiff of a hand-written first-order rule
# (:func:`_vjp_bwd`) runs one batched ``dot`` per path in the second order.


@jax.custom_vjp
def _apply(t, x):
    return _apply_paths(t, x)


def _apply_fwd(t, x):  # through _apply, so that differentiating this rule again uses its VJP
    return _apply(t, x), (t, x)


def _apply_bwd(res, du):
    t, x = res
    return _channels(x, du), _transpose(t, du)


@jax.custom_vjp
def _transpose(t, v):
    return jnp.einsum("eak,ekc->eac", t, v)


def _transpose_fwd(t, v):
    return _transpose(t, v), (t, v)


def _transpose_bwd(res, dy):
    t, v = res
    return _channels(dy, v), _apply(t, dy)


@jax.custom_vjp
def _channels(x, v):
    return jnp.einsum("eac,ekc->eak", x, v)


def _channels_fwd(x, v):
    return _channels(x, v), (x, v)


def _channels_bwd(res, ds):
    x, v = res
    return _transpose(ds, v), _apply(ds, x)


_apply.defvjp(_apply_fwd, _apply_bwd)
_transpose.defvjp(_transpose_fwd, _transpose_bwd)
_channels.defvjp(_channels_fwd, _channels_bwd)


def cg_edge_product(x, sh, w, plan: CGEdgePlan):
    """The fused ``cg-dense`` product of every edge, channels-minor (module docstring).

    Args:
        x: ``[E, D_in, C]`` sender features of every edge.
        sh: ``[E, D_Y]`` edge spherical harmonics.
        w: ``[E, P, C]`` per-path radial weights (``P = plan.num_paths``).
        plan: :func:`cg_edge_plan` of the three layouts.

    Returns:
        ``[E, D_out, C]`` in the layout ``irreps_out`` of the plan.

    Differentiable in reverse mode to any order through the three contractions above (each a
    ``custom_vjp`` made of the others); groups of paths with the same table (an input irrep and
    its opposite parity, which meet the same harmonics) share the table product ``T = Y . B``.
    Forward mode (``jax.jvp``, ``jax.jacfwd``, ``jax.hessian``) is not available through a
    ``custom_vjp``: take Hessians as ``jax.jacrev(jax.grad(f))``. :func:`cg_edge_product_paths`
    is the same function with the earlier reverse rule.
    """
    # Slices are taken with ``split`` (its transpose is one concatenation; the transposes of
    # separate slices are one zero-padded full-size array per slice, summed).
    acc: list = [None] * len(plan.out_dims)
    tables: dict = {}
    ws = jnp.split(w, w.shape[1], axis=1)
    cuts = sorted({b for g in plan.groups for b in (g.rows.start, g.rows.stop)} - {0, x.shape[1]})
    pieces = dict(zip([0, *cuts], jnp.split(x, cuts, axis=1), strict=True))
    for g in plan.groups:
        key = (g.table.shape, g.table.tobytes())
        if key not in tables:
            tables[key] = jnp.einsum("es,sak->eak", sh, jnp.asarray(g.table, x.dtype))
        u = _apply(tables[key], pieces[g.rows.start])
        cuts = [cols.stop for _, cols, _ in g.paths][:-1]
        for (k, _, i), ui in zip(g.paths, jnp.split(u, cuts, axis=1), strict=True):
            v = ui * ws[k]
            acc[i] = v if acc[i] is None else acc[i] + v
    return jnp.concatenate(acc, axis=1)


#: The product :func:`cg_dense_edge_kernel` traces (:func:`cg_edge_rule`). Read at trace time.
_RULE: contextvars.ContextVar[str] = contextvars.ContextVar("tensorproducts_cg_rule",
                                                            default="closed")


@contextlib.contextmanager
def cg_edge_rule(rule: str):
    """Inside the ``with`` block, :func:`cg_dense_edge_kernel` traces ``rule``'s product:
    ``"closed"`` (the default, :func:`cg_edge_product`) or ``"paths"``
    (:func:`cg_edge_product_paths`, the earlier reverse rule; A/B timing)."""
    if rule not in ("closed", "paths"):
        raise ValueError(f"cg_edge_rule: rule must be closed or paths, got {rule!r}")
    with scoped(_RULE, rule):
        yield


def cg_dense_edge_kernel(
    product: EdgeProduct, x, sh, basis, weights, senders, receivers, num_nodes: int
):
    """``cg-dense``'s ``edge_kernel``: :meth:`tensorproducts.edge.EdgeProduct.__call__` with
    ``x[N, C, D_in]``, ``weights[K, C, P]`` -> ``[N, C, D_out]``, channels-minor inside."""
    plan = cg_edge_plan(str(product.irreps_in), str(product.irreps_sh), str(product.irreps_out))
    k, c, p = weights.shape
    xt = jnp.swapaxes(x, 1, 2)  # [N, D_in, C]
    wt = jnp.swapaxes(weights, 1, 2).reshape(k, p * c)  # columns in (P, C) order

    def messages(sh_e, basis_e, senders_e):  # [E', D_out, C]
        w = (basis_e @ wt).reshape(basis_e.shape[0], p, c)
        product = cg_edge_product_paths if _RULE.get() == "paths" else cg_edge_product
        return product(xt[senders_e], sh_e, w, plan)

    a = sum_over_edges(messages, (sh, basis, senders), receivers, num_nodes)
    return jnp.swapaxes(a, 1, 2)
