r"""``matrix``: the matrix tensor product, made E(3)-correct.

Xie, Daigavane, Kotak, Smidt, "The Price of Freedom", ICML 2025 (sec. "Matrix tensor product",
after e3x's ``FusedTensor``, Unke & Maennel 2024). Each input becomes an operator on the space
:math:`V = \bigoplus_{l=0}^{\tilde L} \mathcal H_l` of spherical harmonics up to
:math:`\tilde L = \lceil (L_1 + L_2)/2 \rceil`, a :math:`D \times D` matrix with
:math:`D = (\tilde L + 1)^2`; the two matrices are multiplied and the product is decomposed back
into irreps.

**Embedding** (a compressed multiplication operator): for the class-:math:`s` part of an input
with coefficients :math:`x_{lm}` (see :mod:`tensorproducts._irreps_io` for classes),

.. math:: X_{(l_a m_a),(l_b m_b)} = \sqrt{4\pi} \sum_{lm} x_{lm}\, G^{l_a l l_b}_{m_a m m_b},

with :math:`G` the real Gaunt coefficients (:func:`tensorproducts.clebsch_gordan.real_gaunt`), i.e.
:math:`X = P_V M_f P_V` for the multiplication operator by :math:`f = \sum x_{lm} Y_{lm}`. Only
blocks with :math:`l_a + l + l_b` even are used, so under inversion
:math:`X \mapsto s\, P X P` with :math:`P = \mathrm{diag}((-1)^{l_a})`: the embedding is
O(3)-equivariant for inputs of either parity (the research code fills every block, which is only
SO(3)-equivariant).

**Product and decomposition.** :math:`X_3 = X_1 X_2` transforms as
:math:`X_3 \mapsto s_1 s_2 P X_3 P`. Block :math:`(l_a, l_c)` of :math:`X_3` holds degree
:math:`l_3` through

.. math:: x^{(3)}_{l_3 m_3} = \sum_{l_a l_c} \sqrt{(2l_a+1)(2l_c+1)}
          \sum_{m_a m_c} (X_3)_{(l_a m_a),(l_c m_c)}\, C^{l_a l_3 l_c}_{m_a m_3 m_c}

(:math:`C` = e3nn's real Clebsch-Gordan tensor), with parity
:math:`p_3 = s_1 s_2 (-1)^{l_a + l_c}`. So blocks with :math:`l_a + l_c + l_3` even feed the
output irrep :math:`(l_3, s_1 s_2 (-1)^{l_3})` and blocks with it odd feed
:math:`(l_3, -s_1 s_2 (-1)^{l_3})`.

**What it produces.** For function-like inputs (``s2_irreps``) it produces outputs of *both*
parities for each :math:`l_3 \le 2\tilde L`: the Gaunt-like paths (:math:`l_1+l_2+l_3` even,
parity :math:`(-1)^{l_3}`) and antisymmetric ones (odd, e.g. ``1o x 1o -> 1e``), each a fixed
linear combination of CG paths; the paths actually realised are measured by
:mod:`tensorproducts.expressivity`. Internal weights: one per output irrep
(``weight_structure="degree"``), multiplying each output block.

**Cost.** Embedding :math:`O(L^2 D^2)`, product :math:`O(D^3) = O(L^6)`, decomposition
:math:`O(D^2 L^2)`, all dense matrix multiplies (tables are mostly zeros; the dense form is what
runs fast on CPUs and GPUs). Large batches run in blocks of samples whose three operators fit
1 MiB (:mod:`tensorproducts._blocking`), so the decomposition reads :math:`X_1 X_2` from cache:
1.2-2.1x faster than one pass at mimo L = 3-7 (one pinned core, interleaved; mimo L=5 at batch
4,000: 32 against 66 ms). Operators of :math:`4 \times 4` are multiplied as a broadcast sum
(``_BROADCAST_MAX_D``).
"""

from __future__ import annotations

import functools
import math

import e3nn_jax as e3nn
import jax.numpy as jnp
import numpy as np

from . import _blocking, _irreps
from . import _irreps_io as io
from .clebsch_gordan import clebsch_gordan, real_gaunt, triangle
from .registry import TensorProductSpec, register

__all__ = ["matrix_tp", "embedding_table", "decomposition_tables", "matrix_paths"]


def matrix_size(l1: int, l2: int) -> int:
    r""":math:`\tilde L = \lceil (L_1 + L_2)/2 \rceil`, the degree of the operator space."""
    return math.ceil((l1 + l2) / 2)


@functools.cache
def embedding_table(lmax: int, lt: int) -> np.ndarray:
    """``((lmax+1)^2, D, D)`` map from dense coefficients to the operator (see module doc)."""
    d = (lt + 1) ** 2
    e = np.zeros(((lmax + 1) ** 2, d, d))
    for l in range(lmax + 1):
        for la in range(lt + 1):
            for lb in range(lt + 1):
                if (la + l + lb) % 2 or not triangle(la, l, lb):
                    continue
                g = math.sqrt(4 * math.pi) * real_gaunt(la, l, lb)  # (ma, m, mb)
                e[l * l : (l + 1) ** 2, la * la : (la + 1) ** 2, lb * lb : (lb + 1) ** 2] = (
                    np.transpose(g, (1, 0, 2))
                )
    e.setflags(write=False)
    return e


@functools.cache
def decomposition_tables(lt: int, lmax_out: int) -> tuple[np.ndarray, np.ndarray]:
    """``(T_even, T_odd)``, each ``(D, D, (lmax_out+1)^2)``: blocks with ``la + lc + l3`` even
    resp. odd (see module doc)."""
    d = (lt + 1) ** 2
    t = np.zeros((2, d, d, (lmax_out + 1) ** 2))
    for l3 in range(lmax_out + 1):
        for la in range(lt + 1):
            for lc in range(lt + 1):
                if not triangle(la, l3, lc):
                    continue
                c = math.sqrt((2 * la + 1) * (2 * lc + 1)) * clebsch_gordan(la, l3, lc)
                t[(la + lc + l3) % 2, la * la : (la + 1) ** 2, lc * lc : (lc + 1) ** 2,
                  l3 * l3 : (l3 + 1) ** 2] = np.transpose(c, (0, 2, 1))  # fmt: skip
    t.setflags(write=False)
    return t[0], t[1]


def matrix_paths(irreps1, irreps2, irreps_out) -> list:
    """Candidate paths ``(l1, p1, l2, p2, l3, p3)``: every parity-consistent triangle path whose
    output degree fits :math:`2\\tilde L`. Which of them are realised (non-zero) is measured by
    :func:`tensorproducts.expressivity.realised_paths`."""
    irreps1, irreps2 = e3nn.Irreps(irreps1), e3nn.Irreps(irreps2)
    wanted = {ir for _, ir in e3nn.Irreps(irreps_out)}
    out = []
    for _, a in irreps1:
        for _, b in irreps2:
            for c in a * b:
                if c in wanted:
                    out.append((a.l, a.p, b.l, b.p, c.l, c.p))
    return out


@functools.cache
def _path_factor(l1: int, l2: int, l3: int, lt: int) -> float:
    """Multiple of the cg-dense path ``(l1, l2, l3)`` that the matrix product computes."""
    if not triangle(l1, l2, l3):
        return 0.0
    rng = np.random.default_rng(0)
    x = np.zeros((l1 + 1) ** 2)
    y = np.zeros((l2 + 1) ** 2)
    x[l1 * l1 :] = rng.normal(size=2 * l1 + 1)
    y[l2 * l2 :] = rng.normal(size=2 * l2 + 1)
    prod = np.einsum("i,iab->ab", x, embedding_table(l1, lt)) @ np.einsum(
        "i,iab->ab", y, embedding_table(l2, lt)
    )
    table = decomposition_tables(lt, l3)[(l1 + l2 + l3) % 2]
    got = np.einsum("ac,ack->k", prod, table)[l3 * l3 :]
    ref = math.sqrt(2 * l3 + 1) * np.einsum(
        "i,j,ijk->k", x[l1 * l1 :], y[l2 * l2 :], clebsch_gordan(l1, l2, l3)
    )
    return float(got @ ref / (ref @ ref))


def matrix_normalisation(l1: int, l2: int, l3: int) -> float:
    r"""Path factor relative to ``cg-dense`` for single-irrep inputs ``l1`` and ``l2``.

    By Schur's lemma the matrix product restricted to one path is a multiple of the CG path; the
    multiple depends on the operator degree :math:`\tilde L`, here
    :math:`\lceil (l_1+l_2)/2 \rceil`; :func:`matrix_cg_weights` handles any inputs.
    Computed from the tables, not tabulated.
    """
    return _path_factor(l1, l2, l3, matrix_size(l1, l2))


def matrix_cg_weights(irreps1, irreps2, irreps_out) -> np.ndarray:
    """Per-path factors (``_irreps.cg_paths`` order) making ``cg-dense`` equal this product."""
    irreps1, irreps2 = e3nn.Irreps(irreps1), e3nn.Irreps(irreps2)
    l1 = max((ir.l for _, ir in irreps1), default=0)
    l2 = max((ir.l for _, ir in irreps2), default=0)
    lt = matrix_size(l1, l2)
    paths = _irreps.cg_paths(irreps1, irreps2, irreps_out)
    return np.array([_path_factor(p[0], p[2], p[4], lt) for p in paths])


def _num_weights(irreps1, irreps2, irreps_out) -> int:
    return e3nn.Irreps(irreps_out).num_irreps


# Operators of this size or smaller are multiplied as a broadcast sum, not a batched dot: XLA's
# CPU batched dot of 4 x 4 matrices is 5-10x slower than the fused elementwise loop
# (mimo L=1, batch 10,000: 0.8 against 5-10 ms, one pinned core, interleaved), while from
# 9 x 9 up the dot is at least as fast.
_BROADCAST_MAX_D = 4


def _matmul(a: jnp.ndarray, b: jnp.ndarray) -> jnp.ndarray:
    """Batched ``a @ b`` of ``(..., D, D)`` operators (see ``_BROADCAST_MAX_D``)."""
    if a.shape[-1] <= _BROADCAST_MAX_D:
        return (a[..., :, :, None] * b[..., None, :, :]).sum(-2)
    return a @ b


def _product(irreps1, irreps2, irreps_out, dtype, l1, l2, lt, xa, ya) -> jnp.ndarray:
    """Embed, multiply, decompose: ``[N, irreps_out.dim]`` from ``[N, D1]`` and ``[N, D2]``
    (input degrees ``l1``, ``l2``, operator degree ``lt``)."""
    x, y = e3nn.IrrepsArray(irreps1, xa), e3nn.IrrepsArray(irreps2, ya)
    lmax_out = min(max((ir.l for _, ir in irreps_out), default=0), 2 * lt)

    def embed(a, lmax):
        return {
            s: jnp.einsum(
                "...i,iab->...ab",
                io.gather_dense(a, s, lmax).astype(dtype),
                jnp.asarray(embedding_table(lmax, lt), dtype),
            )
            for s in io.class_degrees(a.irreps)
        }

    m1, m2 = embed(x, l1), embed(y, l2)
    prods: dict[int, jnp.ndarray] = {}
    for s1, a in m1.items():
        for s2, b in m2.items():
            p = _matmul(a, b)
            prods[s1 * s2] = prods[s1 * s2] + p if s1 * s2 in prods else p
    t_even, t_odd = decomposition_tables(lt, lmax_out)
    dense = {}
    for s3 in {io.parity_class(ir) for _, ir in irreps_out}:
        acc = None
        for sigma, table in ((s3, t_even), (-s3, t_odd)):
            if sigma in prods:
                term = jnp.einsum("...ac,ack->...k", prods[sigma], jnp.asarray(table, dtype))
                acc = term if acc is None else acc + term
        if acc is not None:
            dense[s3] = acc
    return io.assemble_output(irreps_out, dense, (xa.shape[0],), dtype).array


def matrix_tp(
    x: e3nn.IrrepsArray, y: e3nn.IrrepsArray, irreps_out=None, weights=None
) -> e3nn.IrrepsArray:
    """Matrix tensor product (see module docstring).

    Args:
        x, y: multiplicity-1 irreps, leading shapes that broadcast.
        irreps_out: requested output irreps (unreachable ones are exact zeros).
        weights: optional ``(..., irreps_out.num_irreps)``, one factor per output irrep.
    """
    io.check_mul1(x.irreps, "first input", "matrix")
    io.check_mul1(y.irreps, "second input", "matrix")
    if irreps_out is None:
        irreps_out = _irreps.reachable_irreps(x.irreps, y.irreps)
    irreps_out = _irreps.check_irreps(irreps_out, "irreps_out", "matrix")
    io.broadcast_leading(x, y)  # a clear error for leading shapes that do not broadcast
    xa, ya, lead, dtype = _irreps.broadcast_inputs(x, y)
    l1 = max((ir.l for _, ir in x.irreps), default=0)
    l2 = max((ir.l for _, ir in y.irreps), default=0)
    lt = matrix_size(l1, l2)
    # samples in blocks that keep their operators X1, X2, X1 X2 in cache (tensorproducts._blocking)
    size = _blocking.block_size(4 * (3 * (lt + 1) ** 4 + irreps_out.dim), xa.shape[0])
    fn = functools.partial(_product, x.irreps, y.irreps, irreps_out, dtype, l1, l2, lt)
    arr = _blocking.in_blocks(fn, size, xa, ya)
    out = e3nn.IrrepsArray(irreps_out, arr.reshape(lead + (irreps_out.dim,)))
    if weights is not None:
        weights = jnp.asarray(weights)
        if weights.shape[-1] != irreps_out.num_irreps:
            raise ValueError(
                f"matrix: weights last axis {weights.shape[-1]} != number of output irreps "
                f"{irreps_out.num_irreps} of {irreps_out}"
            )
        dims = [ir.dim for mul, ir in irreps_out for _ in range(mul)]
        comp = np.repeat(np.arange(irreps_out.num_irreps), dims)
        out = e3nn.IrrepsArray(irreps_out, out.array * weights.astype(dtype)[..., comp])
    return out


SPEC = register(
    TensorProductSpec(
        name="matrix",
        apply=matrix_tp,
        paths=matrix_paths,
        num_weights=_num_weights,
        weight_structure="degree",
        cost="O(L^6) (dense (L+1)^2 matrix product)",
        exact=True,
        tolerance=1e-10,
        extra={
            "normalisation": matrix_normalisation,
            "cg_weights": matrix_cg_weights,
            "irrep_normalization": "component",
        },
        description="matrix TP: inputs as compressed multiplication operators, multiplied, "
        "decomposed with parity (Xie et al. 2025)",
    )
)
