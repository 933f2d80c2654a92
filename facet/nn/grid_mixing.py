"""Spherical-grid mixing layer (Miklaucic et al., arXiv 2509.08418), made exactly E(3)-equivariant.

Each channel's irreps ``l <= L`` are read as a function on the sphere, sampled on an exact
quadrature grid (:mod:`facet.nn.grid`), mixed across channels by a small MLP applied at every grid
point (weights shared over points), and projected back onto ``l <= L``.

Parity. A natural-parity feature (``p = (-1)^l``: ``0e, 1o, 2e, ...``) is an ordinary function
``a(x) = sum c_lm Y_lm(x)``; under inversion ``c_l -> (-1)^l c_l``, i.e. ``a(x) -> a(-x)``: a
*scalar* field. A pseudo feature (``p = -(-1)^l``: ``0o, 1e, 2o, ...``) gives ``b(x) -> -b(-x)``:
a *pseudoscalar* field. A pointwise map is E(3)-equivariant iff every natural output is even in
``b`` and every pseudo output is odd in ``b``. The activations below respect this:

* ``"quadratic"`` (default, exact): with hidden fields ``u = W_a a`` and ``v = W_b b``,
  natural features ``[u, u^2, v^2]``, pseudo features ``[v, u v]`` -- a degree-2 polynomial
  (``x + c x^2`` after the output linear map), so on the grid of :func:`exact_resolution` with
  ``k = 2`` the layer is equivariant to round-off for rotations *and* inversion.
* ``"silu"`` (approximate): natural ``[silu(u), v tanh(v)]``, pseudo ``[v sigmoid(u)]``. Not
  band-limited, so it aliases; the error shrinks with the grid resolution (docs/ plot).

The output linear map acts per irrep after projecting back (``natural <- natural``,
``pseudo <- pseudo``), so parity is never mixed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
from flax import nnx

from .grid import exact_resolution, grid_matrices
from .linear import ChannelLinear

__all__ = ["GridActivation", "GRID_ACTIVATIONS", "default_resolution", "GridMixer"]


@dataclass(frozen=True)
class GridActivation:
    """A pointwise activation on the grid, split by parity class.

    ``natural(u, v) -> list`` and ``pseudo(u, v) -> list`` of fields ``[..., H, P]``; ``v`` is
    None when the features have no pseudo part. ``degree`` is the polynomial degree (None for
    non-polynomial activations, which cannot be exact on any finite grid).
    """

    natural: Callable
    pseudo: Callable
    degree: int | None


def _quad_nat(u, v):
    return [u, u * u] + ([] if v is None else [v * v])


def _quad_pse(u, v):
    return [v, u * v]


def _silu_nat(u, v):
    return [jax.nn.silu(u)] + ([] if v is None else [v * jnp.tanh(v)])


def _silu_pse(u, v):
    return [v * jax.nn.sigmoid(u)]


GRID_ACTIVATIONS: dict[str, GridActivation] = {
    "quadratic": GridActivation(_quad_nat, _quad_pse, degree=2),
    "silu": GridActivation(_silu_nat, _silu_pse, degree=None),
}


def default_resolution(lmax: int, activation: str) -> tuple[int, int]:
    """Exact grid for polynomial activations; for non-polynomial ones the grid that would be exact
    for degree 4 (a documented compromise: the error is measured in docs/grid_equivariance.png)."""
    act = GRID_ACTIVATIONS[activation]
    return exact_resolution(lmax, act.degree if act.degree is not None else 4)


def _to_grid(x, m):
    return jnp.einsum("...hd,dp->...hp", x, m)


def _from_grid(s, m):
    return jnp.einsum("...hp,pd->...hd", s, m)


class GridMixer(nnx.Module):
    """``x[..., C, D] -> y[..., C, D]``: per-irrep linear to ``H`` hidden fields, pointwise
    activation on the grid, projection back, per-irrep linear to ``C`` channels."""

    def __init__(
        self,
        channels: int,
        hidden: int,
        lmax: int,
        pseudo: bool,
        *,
        activation: str = "quadratic",
        resolution: tuple[int, int] | None = None,
        rngs: nnx.Rngs,
        dtype=jnp.float32,
    ):
        from .linear import feature_irreps, natural_irreps, pseudo_irreps

        if activation not in GRID_ACTIVATIONS:
            raise KeyError(
                f"unknown grid activation {activation!r}; known: {', '.join(GRID_ACTIVATIONS)}"
            )
        self.activation = activation
        self.lmax = lmax
        self.pseudo = pseudo
        res = tuple(resolution) if resolution is not None else default_resolution(lmax, activation)
        self.resolution = (int(res[0]), int(res[1]))
        self.irreps = feature_irreps(lmax, pseudo)
        nat, pse = natural_irreps(lmax), pseudo_irreps(lmax)
        self.nat_irreps, self.pse_irreps = nat, pse
        self.ls = tuple(range(lmax + 1))
        grid_matrices(self.ls, *self.resolution)  # precompute (cached, float64 NumPy)
        self.lin_a = ChannelLinear(channels, hidden, self.irreps, nat, rngs=rngs, dtype=dtype)
        self.lin_b = (
            ChannelLinear(channels, hidden, self.irreps, pse, rngs=rngs, dtype=dtype)
            if pseudo
            else None
        )
        act = GRID_ACTIVATIONS[activation]
        u0 = jnp.zeros((1, 1))
        v0 = jnp.zeros((1, 1)) if pseudo else None
        n_nat = len(act.natural(u0, v0))
        out_irreps = nat
        self.out_a = ChannelLinear(
            n_nat * hidden, channels, nat, out_irreps, rngs=rngs, dtype=dtype
        )
        self.out_b = (
            ChannelLinear(
                len(act.pseudo(u0, v0)) * hidden, channels, pse, pse, rngs=rngs, dtype=dtype
            )
            if pseudo
            else None
        )

    def __call__(self, x):
        act = GRID_ACTIVATIONS[self.activation]
        tg, fg = grid_matrices(self.ls, *self.resolution)
        tg = jnp.asarray(tg, x.dtype)
        fg = jnp.asarray(fg, x.dtype)
        u = _to_grid(self.lin_a(x), tg)
        v = _to_grid(self.lin_b(x), tg) if self.pseudo else None
        ya = self.out_a(_from_grid(jnp.concatenate(act.natural(u, v), axis=-2), fg))
        if not self.pseudo:
            return ya
        yb = self.out_b(_from_grid(jnp.concatenate(act.pseudo(u, v), axis=-2), fg))
        return jnp.concatenate([ya, yb], axis=-1)
