"""Channel-wise equivariant linear maps and the per-channel irreps layout of Facet features.

Facet node features are arrays ``x[..., C, D]``: ``C`` channels, each holding the same irreps with
multiplicity one (``D = irreps.dim``), e.g. ``0e + 1o + 2e`` ("natural" parity ``p = (-1)^l``)
optionally followed by pseudo irreps ``0o + 1e + 2o`` (``p = -(-1)^l``). The layout is an
``e3nn.Irreps`` whose entries all have multiplicity one.

An equivariant linear map mixes channels separately for each irrep (Schur's lemma: only maps
between equal ``(l, p)`` are allowed):

.. math::  y_{d, (l p m)} = \\frac{1}{\\sqrt{C_{in}}} \\sum_c W^{(l p)}_{c d} \\, x_{c, (l p m)} .

Irreps of the output absent from the input are zero.
"""

from __future__ import annotations

import e3nn_jax as e3nn
import jax
import jax.numpy as jnp
from flax import nnx

__all__ = ["natural_irreps", "pseudo_irreps", "feature_irreps", "channel_linear", "ChannelLinear"]


def natural_irreps(lmax: int) -> e3nn.Irreps:
    """``0e + 1o + ... `` up to ``lmax``: parity ``(-1)^l`` (polar tensors, like ``Y_l``)."""
    return e3nn.Irreps([(1, (l, (-1) ** l)) for l in range(lmax + 1)])


def pseudo_irreps(lmax: int) -> e3nn.Irreps:
    """``0o + 1e + ...`` up to ``lmax``: parity ``-(-1)^l`` (pseudo tensors)."""
    return e3nn.Irreps([(1, (l, -((-1) ** l))) for l in range(lmax + 1)])


def feature_irreps(lmax: int, pseudo: bool) -> e3nn.Irreps:
    """Per-channel layout: natural irreps, then (optionally) pseudo irreps."""
    irreps = natural_irreps(lmax)
    return irreps + pseudo_irreps(lmax) if pseudo else irreps


def _common(irreps_in: e3nn.Irreps, irreps_out: e3nn.Irreps) -> list[tuple[int, int]]:
    """Pairs ``(i_in, i_out)`` of entries with equal ``(l, p)``."""
    pairs = []
    for i_out, (_, ir_out) in enumerate(irreps_out):
        for i_in, (_, ir_in) in enumerate(irreps_in):
            if ir_in == ir_out:
                pairs.append((i_in, i_out))
                break
    return pairs


def channel_linear(x, w, irreps_in: e3nn.Irreps, irreps_out: e3nn.Irreps):
    """Apply per-irrep channel mixing. ``x[..., C_in, D_in]``, ``w[P, C_in, C_out]`` with ``P``
    the number of ``(l, p)`` shared by both layouts (in the order of ``irreps_out``)."""
    c_in = x.shape[-2]
    sl_in = irreps_in.slices()
    pairs = _common(irreps_in, irreps_out)
    blocks = []
    k = 0
    by_out = dict((o, i) for i, o in pairs)
    for i_out, (_, ir) in enumerate(irreps_out):
        if i_out in by_out:
            xi = x[..., sl_in[by_out[i_out]]]
            blocks.append(jnp.einsum("...cm,cd->...dm", xi, w[k]) / jnp.sqrt(c_in).astype(x.dtype))
            k += 1
        else:
            blocks.append(jnp.zeros(x.shape[:-2] + (w.shape[-1], ir.dim), x.dtype))
    return jnp.concatenate(blocks, axis=-1)


class ChannelLinear(nnx.Module):
    """Thin NNX holder of the weights of :func:`channel_linear` (normal init, unit variance)."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        irreps_in: e3nn.Irreps,
        irreps_out: e3nn.Irreps,
        *,
        rngs: nnx.Rngs,
        dtype=jnp.float32,
    ):
        self.irreps_in = e3nn.Irreps(irreps_in)
        self.irreps_out = e3nn.Irreps(irreps_out)
        n = len(_common(self.irreps_in, self.irreps_out))
        if n == 0:
            raise ValueError(f"no irreps in common between {irreps_in} and {irreps_out}")
        self.w = nnx.Param(jax.random.normal(rngs.params(), (n, c_in, c_out), dtype))

    def __call__(self, x):
        return channel_linear(x, self.w[...], self.irreps_in, self.irreps_out)
