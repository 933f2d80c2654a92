"""The spherical grid of the mixing layer: its resolution rule and its dense transform matrices.

The grid and its quadrature are :mod:`tensorproducts.s2grid`'s (one definition in the code
base): ``n_beta`` Gauss-Legendre nodes in ``cos(beta)`` times ``n_alpha`` uniform azimuths
``alpha_j = 2 pi j / n_alpha``, polar axis ``y`` (e3nn's convention). The product rule integrates
every polynomial of degree ``<= D`` on the sphere exactly when ``2 n_beta - 1 >= D`` and
``n_alpha >= D + 1`` (:func:`tensorproducts.s2grid.exact_resolution`). This module adds what the
mixing layer needs on top: the rule for ``D`` below, weights that sum to ``4 pi`` (s2grid's
average to one), and the transforms as two dense matrices restricted to the layer's degrees.

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

The matrices are :func:`tensorproducts.s2grid.grid_harmonics` (the same per-m tables as the
tensor products' transforms), computed once in float64 NumPy and cached; nothing is compiled.
"""

from __future__ import annotations

import functools

import numpy as np

from tensorproducts import s2grid

__all__ = ["exact_resolution", "grid_points", "grid_matrices"]


def exact_resolution(lmax: int, degree: int) -> tuple[int, int]:
    """Minimal ``(n_beta, n_alpha)`` for which a degree-``degree`` polynomial activation of a
    signal band-limited to ``lmax`` is projected back onto ``l <= lmax`` exactly."""
    if lmax < 0 or degree < 1:
        raise ValueError(f"need lmax >= 0 and degree >= 1, got lmax={lmax}, degree={degree}")
    return s2grid.exact_resolution((degree + 1) * lmax)


@functools.lru_cache(maxsize=64)
def grid_points(n_beta: int, n_alpha: int) -> tuple[np.ndarray, np.ndarray]:
    """``(points (P, 3), weights (P,))`` of the grid, float64, ``P = n_beta n_alpha`` in
    ``(beta, alpha)`` order; the weights sum to ``4 pi``."""
    _, _, w = s2grid.grid_points(n_beta, n_alpha)  # per ring, averaging to one over the sphere
    pts = s2grid.grid_vectors(n_beta, n_alpha).reshape(-1, 3)
    return pts, np.repeat(4.0 * np.pi * w, n_alpha)


@functools.lru_cache(maxsize=64)
def grid_matrices(ls: tuple[int, ...], n_beta: int, n_alpha: int) -> tuple[np.ndarray, np.ndarray]:
    """``(to_grid (D, P), from_grid (P, D))`` for coefficients of degrees ``ls`` (one irrep each,
    in that order; parity does not enter the functions themselves).

    ``signal = coeffs @ to_grid`` and ``coeffs = signal @ from_grid``.
    """
    lmax = max(ls, default=0)
    y = s2grid.grid_harmonics(lmax, n_beta, n_alpha).reshape((lmax + 1) ** 2, -1)  # (D_all, P)
    rows = np.asarray([i for l in ls for i in range(l * l, (l + 1) ** 2)], dtype=np.int64)
    to_grid = np.ascontiguousarray(y[rows])
    _, _, w = s2grid.grid_points(n_beta, n_alpha)
    # c = (1/4pi) sum_p w_p f(x_p) Y(x_p), with s2grid's weights w_p / (4 pi)
    from_grid = np.ascontiguousarray((to_grid * np.repeat(w, n_alpha)[None, :]).T)
    return to_grid, from_grid
