r"""``vector-gaunt-grid``: the vector-spherical-harmonic product, the antisymmetric paths.

Each input is read as a function on the sphere (:mod:`tensorproducts.s2grid` convention) and
replaced by its surface gradient, a tangent vector field (the vector spherical harmonics
:math:`\Psi_{lm} = \nabla_S Y_{lm}`; Barrera et al., Eur. J. Phys. 6, 287 (1985)). The pointwise
cross product of two tangent fields is radial; its radial component is the output signal

.. math:: h(\hat r) = \hat r\cdot\big(\nabla_S f_x \times \nabla_S f_y\big)
          = \partial_\beta f_x\, \frac{\partial_\alpha f_y}{\sin\beta}
          - \frac{\partial_\alpha f_x}{\sin\beta}\, \partial_\beta f_y ,
          \qquad z_{l_3 m_3} = \frac{1}{4\pi}\int h \sqrt{4\pi}\, Y_{l_3 m_3}\, d\Omega

(:math:`(\hat\beta, \hat\alpha, \hat r)` is right-handed in e3nn's y-polar coordinates).
Equivalently :math:`z = \sum_{\text{paths}} \nu(l_1,l_2,l_3)\,[\text{cg-dense path}]` with

.. math:: \nu(l_1, l_2, l_3) = \sqrt{(2l_1+1)(2l_2+1)\, l_1(l_1+1)\, l_2(l_2+1)}
          \left|\begin{pmatrix} l_1 & l_2 & l_3 \\ 1 & -1 & 0\end{pmatrix}\right|
          \quad (l_1 + l_2 + l_3 \text{ odd}),

and zero for even :math:`l_1+l_2+l_3` (:func:`vector_gaunt_normalisation`, checked against the
product itself in the tests). **Paths produced:** exactly the CG paths with :math:`l_1+l_2+l_3`
odd, i.e. :math:`|l_1-l_2| < l_3 < l_1+l_2`, :math:`l_1, l_2 \ge 1`, e.g. ``1o x 1o -> 1e`` (the
cross product) and ``1o x 2e -> 2o``: the complement of the Gaunt paths, so ``gaunt-grid`` plus
``vector-gaunt-grid`` together realise every CG path (Xie et al., ICML 2025).

**Parity.** :math:`\nabla` is odd and :math:`\hat r` is odd under inversion, so a class-``a`` and
a class-``b`` signal (``p = p_val (-1)^l``) give a class :math:`-ab` output: output parity
:math:`p_1 p_2` on every path, pseudo-parity inputs included.

**Grid and cost.** :math:`h` is band-limited to degree :math:`L_1+L_2-1` (it is
:math:`\hat r \cdot (\nabla F \times \nabla G)` for the harmonic extensions), so the minimal exact
grid is :func:`tensorproducts.s2grid.exact_resolution` of :math:`L_1+L_2+L_3-1`. Each input needs
two per-m transforms (:math:`\partial_\beta` and :math:`\partial_\alpha/\sin\beta` tables), so the
cost is about twice ``gaunt-grid``'s, :math:`O(L^3)`.
"""

from __future__ import annotations

import functools
import math

import e3nn_jax as e3nn
import jax.numpy as jnp
import numpy as np

from . import s2grid
from ._grid_product import grid_product, grid_spec
from .clebsch_gordan import wigner_3j
from .registry import register

NAME = "vector-gaunt-grid"


def vector_gaunt_normalisation(l1: int, l2: int, l3: int) -> float:
    """Per-path factor relative to ``cg-dense`` (zero for even ``l1 + l2 + l3``)."""
    if (l1 + l2 + l3) % 2 == 0 or l1 == 0 or l2 == 0:
        return 0.0
    w = abs(wigner_3j(l1, l2, l3, 1, -1, 0))
    return math.sqrt((2 * l1 + 1) * (2 * l2 + 1) * l1 * (l1 + 1) * l2 * (l2 + 1)) * w


@functools.cache
def derivative_tables(lmax: int, res_beta: int, res_alpha: int):
    r"""``(dleg, sleg, alpha_tab, dalpha_tab)`` for the two tangent components.

    ``dleg[m, b, l]`` = :math:`\sqrt{4\pi}\,\partial_\beta \bar P_l^{|m|}(\cos\beta_b)`,
    ``sleg[m, b, l]`` = :math:`\sqrt{4\pi}\,\bar P_l^{|m|}/\sin\beta_b`, ``alpha_tab`` the real DFT
    basis and ``dalpha_tab`` its alpha derivative. The beta derivative uses the ladder relation
    :math:`\partial_\beta \bar P_l^m = \tfrac12[\sqrt{(l+m)(l-m+1)}\,\bar P_l^{m-1}
    - \sqrt{(l-m)(l+m+1)}\,\bar P_l^{m+1}]` for :math:`m \ge 1` and
    :math:`\partial_\beta \bar P_l^0 = -\sqrt{l(l+1)}\,\bar P_l^1` (from
    :math:`L_\pm Y_{lm}` with the Condon-Shortley phase removed), checked by finite differences.
    """
    p = s2grid.legendre_table(lmax + 1, res_beta)[:, :, : lmax + 1]  # [m, b, l], m <= lmax+1
    y, _, _ = s2grid.grid_points(res_beta, 1)
    sin_b = np.sqrt(1 - y**2)
    ls = np.arange(lmax + 1)[None, :]
    dp = np.empty((lmax + 1, res_beta, lmax + 1))
    dp[0] = -np.sqrt(ls * (ls + 1)) * p[1]
    for m in range(1, lmax + 1):
        down = np.sqrt(np.clip((ls + m) * (ls - m + 1), 0, None))
        up = np.sqrt(np.clip((ls - m) * (ls + m + 1), 0, None))
        dp[m] = 0.5 * (down * p[m - 1] - up * p[m + 1])
    ms = np.abs(np.arange(-lmax, lmax + 1))
    dleg = math.sqrt(4 * np.pi) * dp[ms]
    sleg = math.sqrt(4 * np.pi) * p[ms] / sin_b[None, :, None]
    _, alpha, _ = s2grid.grid_points(1, res_alpha)
    m = np.arange(-lmax, lmax + 1)[:, None]
    a_tab = s2grid._alpha_table(lmax, res_alpha)
    da_tab = np.where(
        m < 0, math.sqrt(2) * (-m) * np.cos(-m * alpha), -math.sqrt(2) * m * np.sin(m * alpha)
    )
    da_tab[lmax] = 0.0
    return dleg, sleg, a_tab, da_tab


def tangent_components(coeffs_t, res_beta: int, res_alpha: int):
    r"""``(d_beta f, d_alpha f / sin beta)``, each ``[res_alpha, res_beta, N]`` (feature-major).

    ``coeffs_t`` is ``[(L+1)^2, N]``; same per-m scheme as :func:`tensorproducts.s2grid.
    to_grid_fm` with the derivative tables.
    """
    lmax = math.isqrt(coeffs_t.shape[0]) - 1
    dleg, sleg, a_tab, da_tab = derivative_tables(lmax, res_beta, res_alpha)
    to_padded, _ = s2grid._layout(lmax)
    n, dt = coeffs_t.shape[1], coeffs_t.dtype
    x = jnp.concatenate([coeffs_t, jnp.zeros((1, n), dt)], axis=0)[to_padded]  # [m, l, N]
    gb = jnp.matmul(jnp.asarray(dleg, dt), x).reshape(2 * lmax + 1, -1)  # [m, b N]
    ga = jnp.matmul(jnp.asarray(sleg, dt), x).reshape(2 * lmax + 1, -1)
    f_beta = (jnp.asarray(a_tab.T, dt) @ gb).reshape(res_alpha, res_beta, n)
    f_alpha = (jnp.asarray(da_tab.T, dt) @ ga).reshape(res_alpha, res_beta, n)
    return f_beta, f_alpha


def product_grid(ir1, ir2, out) -> tuple[int, int]:
    """Minimal exact ``(res_beta, res_alpha)`` for degree lmax1 + lmax2 - 1 + lmax_out."""
    return s2grid.exact_resolution(max(ir1.lmax + ir2.lmax - 1, 0) + out.lmax)


def _cross(tx, ty):
    """Radial component of the cross product of two tangent fields ``(d_beta, d_alpha/sin)``."""
    (xb, xal), (yb, yal) = tx, ty
    return xb * yal - xal * yb


def vector_gaunt_grid(
    x: e3nn.IrrepsArray, y: e3nn.IrrepsArray, irreps_out=None, weights=None, *, resolution=None
) -> e3nn.IrrepsArray:
    """VSH cross-product of ``x`` and ``y`` onto ``irreps_out`` (see module docstring)."""
    return grid_product(
        NAME, -1, x, y, irreps_out, weights, resolution,
        product_grid=product_grid, to_signal=tangent_components, multiply=_cross,
    )  # fmt: skip


SPEC = register(
    grid_spec(
        NAME,
        vector_gaunt_grid,
        -1,
        description="vector-SH product: cross product of surface gradients on the exact grid",
        normalisation=vector_gaunt_normalisation,
        product_grid=product_grid,
    )
)
