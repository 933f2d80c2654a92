r"""``gaunt-grid``: the Gaunt tensor product as a pointwise product on an exact spherical grid.

Each input is read as a function on the sphere, :math:`f(\hat r) = \sum c_{lm}\sqrt{4\pi}
Y_{lm}(\hat r)` (:mod:`tensorproducts.s2grid` convention), the two functions are multiplied
pointwise and the product is projected back:

.. math:: z_{l_3 m_3} = \frac{1}{4\pi}\int_{S^2} f_x(\hat r) f_y(\hat r)\sqrt{4\pi}\,
          Y_{l_3 m_3}(\hat r)\, d\Omega
          = \sum_{\text{paths}} \sqrt{(2l_1+1)(2l_2+1)}
          \left|\begin{pmatrix} l_1 & l_2 & l_3\\ 0&0&0\end{pmatrix}\right|
          \Big[\sqrt{2l_3+1}\, C^{l_1 l_2 l_3} x\, y\Big]_{m_3}.

So Gaunt is the CG product (``cg-dense``, "component" normalisation) with fixed, non-negative
per-path weights :math:`\sqrt{(2l_1+1)(2l_2+1)}\,|3j(l_1 l_2 l_3; 000)|` (spec
``extra["normalisation"]``), zero when :math:`l_1+l_2+l_3` is odd: only "symmetric" paths exist
(Xie et al., ICML 2025; Luo et al., "Enabling efficient equivariant operations in the Fourier
basis via Gaunt tensor products", ICLR 2024).

**Parity.** An input with irreps of both parity classes (``p = p_val (-1)^l``: ``0e+1o+..`` has
``p_val = +1``, ``0o+1e+..`` has ``p_val = -1``) is split into one signal per class; the product of
classes ``a`` and ``b`` is a class ``a b`` signal. So pseudo-parity inputs are handled exactly and
the output parity of every path is :math:`p_1 p_2`.

**Grid and cost.** For inputs of degrees :math:`\le L_1, L_2` and outputs :math:`\le L_3` the
integrand has degree :math:`L_1+L_2+L_3`; :func:`tensorproducts.s2grid.exact_resolution` gives the
minimal exact Gauss-Legendre x uniform grid, ``(2L+1) x (4L+1)`` for ``L -> 2L``. Transforms are
per m (:math:`O(L^3)`), batch and channels are a matmul dimension; the pointwise product costs
:math:`O(L^2)`. Total :math:`O(L^3)` per product.
"""

from __future__ import annotations

import functools
import math

import e3nn_jax as e3nn
import jax.numpy as jnp
import numpy as np

from . import _irreps, s2grid
from .clebsch_gordan import wigner_3j_000
from .registry import TensorProductSpec, register

NAME = "gaunt-grid"


def gaunt_normalisation(l1: int, l2: int, l3: int) -> float:
    """Per-path factor relative to ``cg-dense``: sqrt((2l1+1)(2l2+1)) |(l1 l2 l3; 0 0 0)|."""
    return math.sqrt((2 * l1 + 1) * (2 * l2 + 1)) * abs(wigner_3j_000(l1, l2, l3))


@functools.cache
def class_layout(irreps: str) -> tuple[tuple[int, int, np.ndarray | None], ...]:
    """Per parity class of ``irreps``: ``(p_val, lmax, index)``.

    ``index`` gathers the flat ``(lmax+1)^2`` coefficients of that class from the input array
    with one trailing zero appended (position ``irreps.dim``); ``None`` when the gather is the
    identity (the input already is ``s2_irreps(lmax, p_val)``).
    """
    irreps = e3nn.Irreps(irreps)
    out = []
    for pv, ls in sorted(s2grid.parity_classes(irreps).items(), reverse=True):
        lmax = max(ls)
        index = np.full((lmax + 1) ** 2, irreps.dim, dtype=np.int32)
        for (_, ir), sl in zip(irreps, irreps.slices(), strict=True):
            if ir.p * (-1) ** ir.l == pv:
                index[ir.l**2 : (ir.l + 1) ** 2] = np.arange(sl.start, sl.stop)
        identity = index.size == irreps.dim and np.array_equal(index, np.arange(irreps.dim))
        out.append((pv, lmax, None if identity else index))
    return tuple(out)


def split_classes(a_t, irreps) -> dict[int, tuple[int, jnp.ndarray]]:
    """``{p_val: (lmax, coeffs [(lmax+1)^2, N])}`` of a feature-major ``[irreps.dim, N]`` array."""
    out = {}
    for pv, lmax, index in class_layout(str(irreps)):
        if index is None:
            out[pv] = (lmax, a_t)
        else:
            padded = jnp.concatenate([a_t, jnp.zeros_like(a_t[:1])], axis=0)
            out[pv] = (lmax, padded[index])  # whole-row gather
    return out


def out_blocks(coeffs: dict[int, jnp.ndarray], irreps_out) -> dict:
    """``{ir: [N, 2l+1]}`` from feature-major class coefficients ``{p_val: [(L+1)^2, N]}``."""
    blocks = {}
    for _, ir in irreps_out:
        pv = ir.p * (-1) ** ir.l
        if pv in coeffs:
            blocks[ir] = coeffs[pv][ir.l**2 : (ir.l + 1) ** 2].T
    return blocks


def product_grid(ir1, ir2, out) -> tuple[int, int]:
    """Minimal exact ``(res_beta, res_alpha)`` for degrees lmax1 + lmax2 + lmax_out."""
    return s2grid.exact_resolution(ir1.lmax + ir2.lmax + out.lmax)


def gaunt_grid(
    x: e3nn.IrrepsArray, y: e3nn.IrrepsArray, irreps_out=None, weights=None, *, resolution=None
) -> e3nn.IrrepsArray:
    """Gaunt product of ``x`` and ``y`` onto ``irreps_out`` on the minimal exact grid.

    ``resolution=(res_beta, res_alpha)`` overrides the grid (only for negative controls:
    anything below the exact rule aliases). ``weights`` must be ``None`` (no internal weights).
    """
    if weights is not None:
        raise ValueError(f"{NAME}: takes no internal weights (num_weights = 0), got weights")
    ir1 = _irreps.check_irreps(x.irreps, "x", NAME)
    ir2 = _irreps.check_irreps(y.irreps, "y", NAME)
    if irreps_out is None:
        irreps_out = _irreps.reachable_irreps(ir1, ir2, lambda a, b, c: (a + b + c) % 2 == 0)
    out = _irreps.check_irreps(irreps_out, "irreps_out", NAME)
    xa, ya, lead, dtype = _irreps.broadcast_inputs(x, y)
    if out.dim == 0:
        return _irreps.assemble(out, {}, lead, dtype)
    res_beta, res_alpha = resolution or product_grid(ir1, ir2, out)
    grid = (res_beta, res_alpha)
    sx = {pv: s2grid.to_grid_fm(c, *grid) for pv, (_, c) in split_classes(xa.T, ir1).items()}
    sy = {pv: s2grid.to_grid_fm(c, *grid) for pv, (_, c) in split_classes(ya.T, ir2).items()}
    out_classes = s2grid.parity_classes(out)
    prods: dict = {}
    for p1, f1 in sx.items():
        for p2, f2 in sy.items():
            if p1 * p2 in out_classes:
                prods[p1 * p2] = f1 * f2 if p1 * p2 not in prods else prods[p1 * p2] + f1 * f2
    coeffs = {pv: s2grid.from_grid_fm(f, max(out_classes[pv])) for pv, f in prods.items()}
    return _irreps.assemble(out, out_blocks(coeffs, out), lead, dtype)


def _paths(irreps1, irreps2, irreps_out) -> list:
    return [
        p for p in _irreps.cg_paths(irreps1, irreps2, irreps_out) if (p[0] + p[2] + p[4]) % 2 == 0
    ]


SPEC = register(
    TensorProductSpec(
        name=NAME,
        apply=gaunt_grid,
        paths=_paths,
        num_weights=lambda irreps1, irreps2, irreps_out: 0,
        weight_structure="none",
        cost="O(L^3)",
        exact=True,
        tolerance=1e-12,
        description="Gaunt product: pointwise product on the minimal exact (2L+1)x(4L+1) grid",
        extra={"normalisation": gaunt_normalisation, "resolution": product_grid},
    )
)
