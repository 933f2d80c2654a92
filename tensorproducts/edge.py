r"""Products with edge spherical harmonics, summed over the edges into nodes: one contract.

The message pass of an equivariant graph network multiplies the features of each edge's sender
with the spherical harmonics of the edge direction, weights the product by radial functions of
the edge length, and sums the products over each node's incoming edges:

.. math::

    a_{i,c} = \sum_{e:\ \mathrm{receiver}(e) = i}
        \mathrm{TP}\big(x_{\mathrm{sender}(e), c},\ Y(\hat r_e);\ w_{e,c}\big),
    \qquad w_{e,c,p} = \sum_k b_{e,k}\, W_{k,c,p},

channel-wise ("uvu": channel ``c`` of the output pairs with channel ``c`` of ``x``), with ``TP``
a registered variant and ``Y`` shared by every channel of an edge. The weights are given
factorised, a per-edge basis ``b[E, K]`` (a radial basis, or the last hidden layer of a radial
MLP) times a matrix ``W[K, C, P]``, so that an implementation can form them a block of edges at
a time.

:meth:`EdgeProduct.__call__` is the one entry point. It runs the variant's fused kernel when the
variant registers one (``TensorProductSpec.edge_kernel``; ``cg-dense`` does, see
:mod:`tensorproducts.cg_dense_edge`) and otherwise :meth:`EdgeProduct.reference` over edge blocks.
:meth:`EdgeProduct.reference` is the definition: gather, the variant's generic
:func:`~tensorproducts.registry.TensorProductSpec.apply` with ``Y`` broadcast over channels,
segment sum. Every kernel must equal it (values and gradients) to round-off. This is the seam of
e3nn-jax's ``tensor_product_with_spherical_harmonics`` (one function for "features x edge
harmonics", documented to equal the generic product), widened to include the gather, the sum and
the weights, because those are where a fast kernel chooses its layout and blocking.

Variants without internal weights (Gaunt products) get a factorised modulation instead, one
weight per input irrep and one per output irrep of every channel,
``rho_out * TP(rho_in * x, Y)``, which keeps every path radially tunable.

**Blocking over edges.** On a CPU the per-edge arrays of a message pass (weights ``[E, P, C]``,
products ``[E, D, C]``) are megabytes each and XLA:CPU streams them through memory once per fused
operation; evaluating the messages in blocks of edges inside a checkpointed ``lax.scan`` keeps a
block's intermediates in cache (the backward pass recomputes a block rather than storing it).
Measured on one CPU thread (facet-s, energy + forces + stress, rattled Si): 1.7x faster at 64
atoms (2,120 padded edges), 1.8x at 216 atoms; below about 512 edges one pass is as fast.
Accelerators get the single pass. :func:`edge_block_size` makes the choice; :func:`edge_blocking`
overrides it inside a ``with`` block at trace time (tests, and exports traced on a CPU for another
platform). The result is the same function; only the order of the floating-point sums differs.

**Second derivatives.** Training puts forces in the loss, so it differentiates the force
backward pass again. Plain autodiff of the checkpointed scan gives a reverse scan whose body
recomputes a block and applies its VJP; differentiating that scan saves the body's intermediates
for every block (several ``[E, D, C]`` arrays per layer). The blocked sum therefore has its own
VJP (:func:`_blocked_sum`): the reverse pass is a scan over the blocks with a checkpointed body
(recompute the block's messages, apply their VJP to the gathered output cotangent, accumulate
the cotangents of the closed-over node features and weight matrix in the carry), so that
differentiating it saves only each block's inputs. XLA's compile-time memory analysis of the
training step (float32, nodes/edges/graphs): facet-m at 129/4096/9 from 1.57 GB of temporaries
to 0.19 GB, facet-s at 113/3584/9 from 0.163 GB to 0.031 GB, and the facet-s step 1.85x
faster (docs/training.md, "Memory").
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from collections.abc import Callable
from dataclasses import dataclass

import e3nn_jax as e3nn
import jax
import jax.numpy as jnp
import numpy as np

from .registry import TensorProductSpec, get

__all__ = ["EdgeProduct", "edge_block_size", "edge_blocking", "edge_vjp", "sum_over_edges"]

#: Edges per block on a CPU, and the fewest edges for which blocks are used (see module doc).
CPU_EDGE_BLOCK = 128
MIN_BLOCKED_EDGES = 512
#: On a CPU a block holds fewer than ``CPU_EDGE_BLOCK`` edges (halved, down to 16) while its
#: messages would take more bytes than this: facet-s's ``9 x 72`` float32 per edge gets 64,
#: facet-m's ``32 x 96`` gets 16. Training steps against blocks of 128 (ABBA, one core,
#: docs/training.md): facet-m 1.4x (16 edges; 32: 1.38x, 8: as 16), facet-s 1.05x (64).
CPU_BLOCK_BYTES = 1 << 18

_BLOCK_OVERRIDE: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "tensorproducts_edge_block", default=None
)


@contextlib.contextmanager
def scoped(var: contextvars.ContextVar, value):
    """``var`` holds ``value`` inside the ``with`` block and its previous value after it, also
    when the block raises (the trace-time switches of this package)."""
    token = var.set(value)
    try:
        yield
    finally:
        var.reset(token)


@contextlib.contextmanager
def edge_blocking(block: int):
    """Inside the ``with`` block, products traced use ``block`` edges per block (0: one pass)."""
    if int(block) < 0:
        raise ValueError(f"edge_blocking: block must be >= 0, got {block}")
    with scoped(_BLOCK_OVERRIDE, int(block)):
        yield


_VJP_RULE: contextvars.ContextVar[str] = contextvars.ContextVar(
    "tensorproducts_edge_vjp", default="custom"
)


@contextlib.contextmanager
def edge_vjp(rule: str):
    """Inside the ``with`` block, blocked message passes traced are differentiated by ``rule``:
    ``"custom"`` (the default, :func:`_blocked_sum`'s reverse scan) or ``"autodiff"`` (plain
    autodiff of the checkpointed scan, as before the custom pass; A/B timing and memory)."""
    if rule not in ("custom", "autodiff"):
        raise ValueError(f"edge_vjp: rule must be custom or autodiff, got {rule!r}")
    with scoped(_VJP_RULE, rule):
        yield


def edge_block_size(n_edges: int, row_bytes: int = 0) -> int:
    """Edges per block for a pass over ``n_edges`` edges whose messages take ``row_bytes`` bytes
    per edge (0: unknown), 0 for one pass (module docstring and :data:`CPU_BLOCK_BYTES`)."""
    block = _BLOCK_OVERRIDE.get()
    if block is None:
        on_cpu = jax.default_backend() == "cpu"
        block = CPU_EDGE_BLOCK if on_cpu and n_edges >= MIN_BLOCKED_EDGES else 0
        while block > 16 and block * row_bytes > CPU_BLOCK_BYTES:
            block //= 2
    return block if 0 < block < n_edges else 0


def sum_over_edges(messages: Callable, edge_arrays: tuple, receivers, num_nodes: int):
    """``segment_sum(messages(*edge_arrays), receivers, num_nodes)``, in blocks of edges when
    :func:`edge_block_size` says so. ``messages`` maps the rows of ``edge_arrays`` (arrays with
    a leading edge axis) to ``[E', ...]`` messages; it may close over other arrays (node
    features, weight matrices), which are differentiated as inputs. The last block is filled up
    with copies of the last edge (not zeros: a product may be singular at zero input, e.g. the
    edge frame of ``so2``), whose messages are dropped. Blocked, it is differentiable in
    reverse mode to any order (its VJP is :func:`_blocked_sum`'s), not in forward mode."""
    e = receivers.shape[0]
    row = jax.eval_shape(messages, *(a[:1] for a in edge_arrays))
    block = edge_block_size(e, row.size * row.dtype.itemsize)
    if not block:
        return jax.ops.segment_sum(messages(*edge_arrays), receivers, num_segments=num_nodes)
    blocks = tuple(_blocks(a, block) for a in edge_arrays)
    fn, consts = jax.closure_convert(messages, *(b[0] for b in blocks))
    rec = _blocks(receivers, block, fill=num_nodes)  # filling rows: out of range, dropped
    total = _scan_sum if _VJP_RULE.get() == "autodiff" else _blocked_sum
    return total(fn, num_nodes, tuple(consts), blocks, rec)


def _blocks(a, block: int, fill=None):
    """``a[E, ...] -> [nb, block, ...]``, the last block filled up with copies of the last row
    (or with ``fill``)."""
    nb = -(-a.shape[0] // block)
    widths = [(0, nb * block - a.shape[0])] + [(0, 0)] * (a.ndim - 1)
    padded = jnp.pad(a, widths, mode="edge") if fill is None else jnp.pad(a, widths,
                                                                            constant_values=fill)
    return padded.reshape(nb, block, *a.shape[1:])


def _scan_sum(fn, num_nodes, consts, blocks, rec):
    """The forward pass: ``acc[rec] += fn(*block, *consts)`` over the blocks. The body is
    checkpointed so that a derivative of this pass (the outer one of a training step) saves a
    block's inputs, not its intermediates."""

    def body(acc, blk):
        arrays, r = blk
        return acc.at[r].add(fn(*arrays, *consts), mode="drop"), None

    probe = jax.eval_shape(fn, *(b[0] for b in blocks), *consts)
    acc0 = jnp.zeros((num_nodes, *probe.shape[1:]), probe.dtype)
    acc, _ = jax.lax.scan(jax.checkpoint(body), acc0, (blocks, rec))
    return acc


def _is_float(a) -> bool:
    return jnp.issubdtype(a.dtype, jnp.inexact)


def _zero_cotangent(a):
    return jnp.zeros_like(a) if _is_float(a) else np.zeros(a.shape, jax.dtypes.float0)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _blocked_sum(fn, num_nodes, consts, blocks, rec):
    """:func:`_scan_sum` with a reverse pass that is itself a scan over blocks with a
    checkpointed body (module docstring, *second derivatives*)."""
    return _scan_sum(fn, num_nodes, consts, blocks, rec)


def _blocked_sum_fwd(fn, num_nodes, consts, blocks, rec):
    return _scan_sum(fn, num_nodes, consts, blocks, rec), (consts, blocks, rec)


def _blocked_sum_bwd(fn, num_nodes, res, dacc):
    consts, blocks, rec = res
    c_diff = [_is_float(c) for c in consts]
    b_diff = [_is_float(b) for b in blocks]

    def body(dconsts, blk):
        arrays, r = blk

        def block_messages(d_arrays, d_consts):
            a_it, c_it = iter(d_arrays), iter(d_consts)
            full_a = [next(a_it) if d else a for a, d in zip(arrays, b_diff, strict=True)]
            full_c = [next(c_it) if d else c for c, d in zip(consts, c_diff, strict=True)]
            return fn(*full_a, *full_c)

        _, vjp = jax.vjp(
            block_messages,
            [a for a, d in zip(arrays, b_diff, strict=True) if d],
            [c for c, d in zip(consts, c_diff, strict=True) if d],
        )
        # a scatter-add's cotangent is a gather (zero for the dropped filling rows)
        d_arrays, d_consts = vjp(dacc.at[r].get(mode="fill", fill_value=0))
        return [s + d for s, d in zip(dconsts, d_consts, strict=True)], d_arrays

    dconsts0 = [jnp.zeros_like(c) for c, d in zip(consts, c_diff, strict=True) if d]
    dconsts, d_blocks = jax.lax.scan(jax.checkpoint(body), dconsts0, (blocks, rec))
    return _fill(consts, c_diff, dconsts), _fill(blocks, b_diff, d_blocks), _zero_cotangent(rec)


def _fill(arrays, diff, cotangents) -> tuple:
    """Cotangents of ``arrays``: ``cotangents`` in turn where ``diff``, zeros elsewhere."""
    it = iter(cotangents)
    return tuple(next(it) if d else _zero_cotangent(a) for a, d in zip(arrays, diff, strict=True))


_blocked_sum.defvjp(_blocked_sum_fwd, _blocked_sum_bwd)


@dataclass(frozen=True)
class EdgeProduct:
    """Static plan of one channel-wise product with edge harmonics (hashable, holds no arrays).

    Attributes:
        name: registry name of the variant.
        irreps_in: per-channel layout of the node features (multiplicity one each).
        irreps_sh: layout of the spherical harmonics ``0e + 1o + ...``.
        irreps_out: per-channel output layout; every entry must be reachable by the variant.
    """

    name: str
    irreps_in: e3nn.Irreps
    irreps_sh: e3nn.Irreps
    irreps_out: e3nn.Irreps

    @property
    def spec(self) -> TensorProductSpec:
        return get(self.name)

    @property
    def num_internal(self) -> int:
        """Weights inside the variant (e.g. one per CG path), 0 for weight-free variants."""
        return int(self.spec.num_weights(self.irreps_in, self.irreps_sh, self.irreps_out))

    @property
    def num_weights(self) -> int:
        """``P``: weights per edge and channel (internal, or one per input and output irrep)."""
        n = self.num_internal
        return n if n > 0 else len(self.irreps_in) + len(self.irreps_out)

    def __call__(self, x, sh, basis, weights, senders, receivers, num_nodes: int):
        """``a[N, C, D_out]`` (module docstring) from node features ``x[N, C, D_in]``, harmonics
        ``sh[E, D_sh]``, weights ``basis[E, K] @ weights[K, C, P]``, edge ends ``senders[E]``,
        ``receivers[E]``: the variant's kernel if it has one, else :meth:`reference` in edge
        blocks."""
        kernel = self.spec.edge_kernel
        if kernel is not None and self.num_internal > 0:
            return kernel(self, x, sh, basis, weights, senders, receivers, num_nodes)
        return sum_over_edges(
            lambda sh_e, b_e, s_e: self.messages(x[s_e], sh_e, _edge_weights(b_e, weights)),
            (sh, basis, senders),
            receivers,
            num_nodes,
        )

    def reference(self, x, sh, basis, weights, senders, receivers, num_nodes: int):
        """The definition of :meth:`__call__`, plainly: gather, generic product, segment sum."""
        m = self.messages(x[senders], sh, _edge_weights(basis, weights))
        return jax.ops.segment_sum(m, receivers, num_segments=num_nodes)

    def messages(self, x, sh, w):
        """Per-edge messages ``[E, C, D_out]`` through the variant's generic ``apply``:
        ``x[E, C, D_in]``, ``sh[E, D_sh]`` (broadcast over channels), ``w[E, C, P]``."""
        spec = self.spec
        y = e3nn.IrrepsArray(self.irreps_sh, sh[:, None, :])
        if self.num_internal > 0:
            return spec.apply(
                e3nn.IrrepsArray(self.irreps_in, x), y, self.irreps_out, weights=w
            ).array
        n_in = len(self.irreps_in)
        w_in = _expand(w[..., :n_in], self.irreps_in)
        w_out = _expand(w[..., n_in:], self.irreps_out)
        out = spec.apply(e3nn.IrrepsArray(self.irreps_in, x * w_in), y, self.irreps_out).array
        return out * w_out


def _edge_weights(basis, weights):
    """``w[E, C, P] = basis[E, K] @ weights[K, C, P]``."""
    k, c, p = weights.shape
    return (basis @ weights.reshape(k, c * p)).reshape(basis.shape[0], c, p)


def _expand(w, irreps: e3nn.Irreps):
    """``w[..., len(irreps)] -> [..., irreps.dim]`` repeating each weight over its ``2l+1``."""
    reps = np.array([ir.dim for _, ir in irreps])
    return jnp.repeat(w, reps, axis=-1, total_repeat_length=int(reps.sum()))
