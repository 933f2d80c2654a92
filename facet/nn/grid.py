"""Exact spherical quadrature grids and the coefficient <-> grid transforms of the mixing layer.

Grid: ``n_beta`` Gauss-Legendre nodes in ``z = cos(beta)`` times ``n_alpha`` uniform azimuths
``alpha_j = 2 pi j / n_alpha``; weight ``w_i * 2 pi / n_alpha`` (they sum to ``4 pi``). The polar
axis is ``y`` (e3nn's convention; any axis would do). This product rule integrates every
polynomial of degree ``<= D`` in ``(x, y, z)`` on the sphere exactly when

.. math::  2 n_\\beta - 1 \\ge D \\quad\\text{and}\\quad n_\\alpha \\ge D + 1 ,

because a degree-``D`` polynomial is, at fixed ``beta``, a trigonometric polynomial in ``alpha``
of frequency ``<= D`` (summed exactly by ``D + 1`` uniform points), and its ``alpha``-average is
a polynomial of degree ``<= D`` in ``cos(beta)`` (integrated exactly by ``n_beta`` Gauss-Legendre
nodes when ``2 n_beta - 1 >= D``).

Resolution rule of the mixing layer. The input coefficients have degree ``<= L``; a polynomial
activation of degree ``k`` makes a signal of degree ``<= k L``; projecting it back onto
``Y_{lm}`` with ``l <= L`` integrates a product of degree ``D = (k + 1) L``. Hence the minimal
exact grid is

.. math::  n_\\beta = \\lfloor (k+1) L / 2 \\rfloor + 1,
           \\qquad n_\\alpha = (k+1) L + 1 ,

e.g. ``L = 2, k = 2``: 4 x 7 = 28 points; ``L = 3, k = 2``: 5 x 10 = 50 points. (The looser
rule ``(kL + 1) x (2kL + 1)`` of Xie et al., ICML 2025, represents the full degree-``kL`` product
and so also suffices.) One point fewer in ``beta`` aliases (tested as a negative control).

Transforms use real spherical harmonics in e3nn's convention (``component`` normalisation,
``sum_m Y_lm(x)^2 = 2l + 1``, so ``int Y_lm Y_l'm' dOmega = 4 pi delta``):

.. math::  f(x_p) = \\sum_{lm} c_{lm} Y_{lm}(x_p), \\qquad
           c_{lm} = \\frac{1}{4\\pi} \\sum_p w_p f(x_p) Y_{lm}(x_p) .

The matrices are computed once in float64 NumPy and cached.
"""

from __future__ import annotations

import functools

import e3nn_jax as e3nn
import numpy as np

__all__ = ["exact_resolution", "grid_points", "grid_matrices"]


def exact_resolution(lmax: int, degree: int) -> tuple[int, int]:
    """Minimal ``(n_beta, n_alpha)`` for which a degree-``degree`` polynomial activation of a
    signal band-limited to ``lmax`` is projected back onto ``l <= lmax`` exactly."""
    if lmax < 0 or degree < 1:
        raise ValueError(f"need lmax >= 0 and degree >= 1, got lmax={lmax}, degree={degree}")
    d = (degree + 1) * lmax
    return d // 2 + 1, d + 1


@functools.lru_cache(maxsize=64)
def grid_points(n_beta: int, n_alpha: int) -> tuple[np.ndarray, np.ndarray]:
    """``(points (P, 3), weights (P,))`` of the Gauss-Legendre x uniform grid, float64."""
    if n_beta < 1 or n_alpha < 1:
        raise ValueError(f"grid resolution must be positive, got ({n_beta}, {n_alpha})")
    z, wz = np.polynomial.legendre.leggauss(n_beta)
    alpha = 2.0 * np.pi * np.arange(n_alpha) / n_alpha
    s = np.sqrt(np.clip(1.0 - z * z, 0.0, None))
    # polar axis y: (x, y, z) = (sin b sin a, cos b, sin b cos a)
    pts = np.stack(
        [
            s[:, None] * np.sin(alpha)[None, :],
            np.broadcast_to(z[:, None], (n_beta, n_alpha)),
            s[:, None] * np.cos(alpha)[None, :],
        ],
        axis=-1,
    ).reshape(-1, 3)
    w = (wz[:, None] * np.full((1, n_alpha), 2.0 * np.pi / n_alpha)).reshape(-1)
    return pts, w


@functools.lru_cache(maxsize=64)
def grid_matrices(ls: tuple[int, ...], n_beta: int, n_alpha: int) -> tuple[np.ndarray, np.ndarray]:
    """``(to_grid (D, P), from_grid (P, D))`` for coefficients of degrees ``ls`` (one irrep each,
    in that order; parity does not enter the functions themselves).

    ``signal = coeffs @ to_grid`` and ``coeffs = signal @ from_grid``.
    """
    import jax

    pts, w = grid_points(n_beta, n_alpha)
    irreps = e3nn.Irreps([(1, (l, (-1) ** l)) for l in ls])
    # Evaluate once in float64 (a local context; no global flag is changed) as one compiled
    # program, ahead of time, so that it runs on concrete values even when called under a trace
    # (e.g. ``nnx.eval_shape``). Op by op, the eager evaluation compiled 17 small programs, 1.4 s
    # of the start-up of a facet-s model.
    def sh(p):
        return e3nn.spherical_harmonics(irreps, p, normalize=True, normalization="component").array

    with jax.enable_x64(True):
        y = np.asarray(jax.jit(sh).lower(pts).compile()(pts), dtype=np.float64)  # (P, D)
    to_grid = np.ascontiguousarray(y.T)
    from_grid = (w[:, None] * y) / (4.0 * np.pi)
    return to_grid, from_grid
