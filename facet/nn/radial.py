"""Radial functions: smooth cutoff envelopes, cubic B-spline and Bessel bases, and the least-squares
conversion of a radial MLP into the linear ("spline") form.

Facet replaces the per-edge radial MLP of NequIP/SevenNet (Batzner et al., Nat. Commun. 13, 2453
(2022); Park et al., JCTC 20, 4857 (2024)) by a *linear* map of a fixed basis (Miklaucic et al.,
arXiv 2509.08418):

.. math::  R_k(r) = u(r) \\sum_{i=1}^{K} W_{ik} \\, B_i(r),

with ``B_i`` cubic B-splines on ``[0, r_c]`` and ``u`` a cutoff envelope. ``R_k`` is then itself a
cubic spline times the envelope, so the learnable spline coefficients are exactly ``W``. The
envelope is the polynomial one of DimeNet (Gasteiger et al., ICLR 2020, eq. 8),

.. math::  u(x) = 1 - \\tfrac{(p+1)(p+2)}{2} x^p + p(p+2) x^{p+1} - \\tfrac{p(p+1)}{2} x^{p+2},
           \\quad x = r / r_c < 1, \\qquad u = 0 \\text{ for } x \\ge 1,

which has ``u(1) = u'(1) = u''(1) = 0``: energy, force and force derivative all vanish at the
cutoff. Distances are in Angstrom. All functions here are pure and broadcast over ``r``.
"""

from __future__ import annotations

from collections.abc import Callable

import jax.numpy as jnp
import numpy as np

__all__ = [
    "polynomial_envelope",
    "cubic_bspline",
    "bspline_basis",
    "bessel_basis",
    "RADIAL_BASES",
    "linearize_radial_mlp",
]


def polynomial_envelope(r, r_cut: float, p: int = 6):
    """DimeNet polynomial envelope ``u(r / r_cut)`` (see module docstring); 0 beyond ``r_cut``.

    ``p >= 2`` gives a C^2 cutoff (energy, force and force derivative -> 0 at ``r_cut``).
    """
    x = r / r_cut
    inside = x < 1.0
    x = jnp.where(inside, x, 0.0)  # keeps the masked branch finite for autodiff
    c1 = (p + 1) * (p + 2) / 2.0
    c2 = p * (p + 2.0)
    c3 = p * (p + 1) / 2.0
    xp = x**p
    u = 1.0 - c1 * xp + c2 * xp * x - c3 * xp * x * x
    return jnp.where(inside, u, 0.0)


def cubic_bspline(u):
    """The centred cardinal cubic B-spline ``B_3(u)``, support ``|u| < 2``, C^2, integral 1.

    ``B_3(u) = 2/3 - u^2 + |u|^3 / 2`` for ``|u| < 1``, ``(2 - |u|)^3 / 6`` for ``1 <= |u| < 2``.
    """
    a = jnp.abs(u)
    inner = 2.0 / 3.0 - a * a + 0.5 * a * a * a
    t = jnp.clip(2.0 - a, 0.0, None)
    outer = t * t * t / 6.0
    return jnp.where(a < 1.0, inner, outer)


def bspline_basis(r, n: int, r_cut: float):
    """``n`` uniform cubic B-splines on ``[0, r_cut]``: ``B_i(r) = B_3(r / h - i)``, ``i = 0..n-1``.

    Knot spacing ``h = r_cut / (n - 1)``, so the first spline is centred at 0 and the last at
    ``r_cut``; they sum to one on ``[h, r_cut - h]`` (partition of unity). Multiply by an
    envelope for a smooth cutoff. Returns ``r.shape + (n,)``.
    """
    if n < 4:
        raise ValueError(f"a cubic B-spline basis needs at least 4 functions, got n={n}")
    h = r_cut / (n - 1)
    centres = jnp.arange(n, dtype=jnp.result_type(r, jnp.float32))
    return cubic_bspline(r[..., None] / h - centres)


def bessel_basis(r, n: int, r_cut: float):
    """Spherical Bessel (sinc) basis of DimeNet: ``sqrt(2/r_c) sin(k pi r / r_c) / r``, k=1..n.

    Returns ``r.shape + (n,)``; ``r`` must be positive (edges of zero length are masked before).
    """
    k = jnp.arange(1, n + 1, dtype=jnp.result_type(r, jnp.float32))
    rr = r[..., None]
    return jnp.sqrt(2.0 / r_cut) * jnp.sin(k * jnp.pi * rr / r_cut) / rr


# name -> basis(r, n, r_cut); the model picks one by configuration.
RADIAL_BASES: dict[str, Callable] = {
    "bspline": bspline_basis,
    "bessel": bessel_basis,
}


def linearize_radial_mlp(
    mlp_fn: Callable[[np.ndarray], np.ndarray],
    basis_fn: Callable[[np.ndarray], np.ndarray],
    distances: np.ndarray,
    **kwargs,
):
    """Least-squares linear ("spline") form of a trained radial network.

    Samples ``basis_fn(d)`` (``(n, K)``, envelope included if the MLP's output has it) and
    ``mlp_fn(d)`` (``(n, n_out)``) on ``distances`` and calls the shared solver
    :func:`facet.nn.radial_fit.fit_linear_radial` (keyword arguments are passed on). Returns
    ``(W (K, n_out), report)``; ``W`` is then the ``radial_w`` of a linear radial map.
    """
    from .radial_fit import fit_linear_radial

    d = np.asarray(distances, dtype=np.float64).reshape(-1)
    feats = np.asarray(basis_fn(d), dtype=np.float64)
    targets = np.asarray(mlp_fn(d), dtype=np.float64)
    if targets.ndim == 1:
        targets = targets[:, None]
    return fit_linear_radial(feats, targets, **kwargs)
