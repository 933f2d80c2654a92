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

import math
import operator

import e3nn_jax as e3nn

from . import s2grid
from ._grid_product import grid_product, grid_spec
from .clebsch_gordan import wigner_3j_000
from .registry import register

NAME = "gaunt-grid"


def gaunt_normalisation(l1: int, l2: int, l3: int) -> float:
    """Per-path factor relative to ``cg-dense``: sqrt((2l1+1)(2l2+1)) |(l1 l2 l3; 0 0 0)|."""
    return math.sqrt((2 * l1 + 1) * (2 * l2 + 1)) * abs(wigner_3j_000(l1, l2, l3))


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
    return grid_product(
        NAME, +1, x, y, irreps_out, weights, resolution,
        product_grid=product_grid, to_signal=s2grid.to_grid_fm, multiply=operator.mul,
    )  # fmt: skip


SPEC = register(
    grid_spec(
        NAME,
        gaunt_grid,
        +1,
        description="Gaunt product: pointwise product on the minimal exact (2L+1)x(4L+1) grid",
        normalisation=gaunt_normalisation,
        product_grid=product_grid,
    )
)
