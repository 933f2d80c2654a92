"""Radial map and interaction block (NequIP/SevenNet template with Facet's spline radial and grid
mixing).

One block ``t`` updates channel-wise features ``h[N, C, irreps]``:

.. math::
    x_j &= W_{pre} h_j, \\\\
    a_i &= \\frac{1}{\\bar n^{\\gamma}} \\sum_{j \\in \\mathcal N(i)}
           \\mathrm{TP}\\big(x_j, Y(\\hat r_{ij}); R(r_{ij})\\big), \\\\
    m_i &= W_{post} a_i, \\qquad
    m_i \\leftarrow m_i + \\mathrm{GridMix}(\\mathrm{RMSNorm}(m_i)), \\\\
    h_i' &= h_i + \\alpha_t \\, m_i ,

with ``R(r) = u(r) B(r) W_t`` (spline radial, :mod:`facet.nn.radial`), ``bar n`` the configured
average neighbour count, ``gamma`` its exponent, and ``alpha_t`` a learned scalar initialised small
(``residual_init``) so every block starts near the identity. ``RMSNorm`` divides by the root mean
square over channels and irreps of each node (an invariant, so it is equivariant) and keeps the
polynomial activation of the grid MLP in its well-scaled range.
"""

from __future__ import annotations

import e3nn_jax as e3nn
import jax
import jax.numpy as jnp
from flax import nnx

from .config import ModelConfig
from .grid_mixing import GridMixer
from .linear import ChannelLinear, feature_irreps, natural_irreps
from .message import MessageProduct, embed

__all__ = ["RadialMap", "InteractionBlock", "rms_norm"]


def rms_norm(x, eps: float = 1e-6):
    """``x / sqrt(mean(x^2) + eps)`` over the last two axes (channels and irreps) of each node."""
    ms = jnp.mean(x * x, axis=(-2, -1), keepdims=True)
    return x * jax.lax.rsqrt(ms + eps)


class RadialMap(nnx.Module):
    """``features[E, K] -> weights[E, n_out]``: linear (the spline form) or a SiLU MLP."""

    def __init__(self, k: int, hidden: tuple[int, ...], n_out: int, *, rngs: nnx.Rngs, dtype):
        sizes = (k, *hidden, n_out)
        self.layers = nnx.List(
            [
                nnx.Param(jax.random.normal(rngs.params(), (a, b), dtype))
                for a, b in zip(sizes[:-1], sizes[1:], strict=True)
            ]
        )

    def factors(self, feats, channels: int):
        """The weights as ``basis[E, K'] @ matrix[K', C, P]`` (``P = n_out / channels``): the
        hidden layers applied to ``feats`` and the last weight matrix, its columns read as
        ``(C, P)`` (the form :class:`tensorproducts.edge.EdgeProduct` takes)."""
        ws = [w[...] for w in self.layers]
        k, n = ws[-1].shape
        return _hidden(ws[:-1], feats), ws[-1].reshape(k, channels, n // channels)

    def __call__(self, feats):
        ws = [w[...] for w in self.layers]
        return _hidden(ws[:-1], feats) @ ws[-1]


def _hidden(ws, feats):
    """Hidden SiLU layers (none in the spline form)."""
    x = feats
    for w in ws:
        x = jax.nn.silu((x @ w) / jnp.sqrt(w.shape[0]).astype(x.dtype))
    return x


class InteractionBlock(nnx.Module):
    """One message-passing step (see module docstring)."""

    def __init__(
        self, cfg: ModelConfig, irreps_in: e3nn.Irreps, *, rngs: nnx.Rngs, dtype=jnp.float32
    ):
        c = cfg.channels
        self.irreps_in = e3nn.Irreps(irreps_in)
        self.irreps = feature_irreps(cfg.lmax, cfg.pseudo)
        self.msg = MessageProduct(
            cfg.product, self.irreps_in, natural_irreps(cfg.lmax), self.irreps
        )
        self.msg.validate()
        self.channels = c
        self.pre = ChannelLinear(c, c, self.irreps_in, self.irreps_in, rngs=rngs, dtype=dtype)
        self.radial = RadialMap(
            cfg.num_radial, cfg.radial_mlp, c * self.msg.num_radial, rngs=rngs, dtype=dtype
        )
        self.post = ChannelLinear(c, c, self.msg.irreps_out, self.irreps, rngs=rngs, dtype=dtype)
        self.mixer = GridMixer(
            c,
            cfg.mixer_hidden,
            cfg.lmax,
            cfg.pseudo,
            activation=cfg.mixer_activation,
            resolution=cfg.grid_resolution,
            rngs=rngs,
            dtype=dtype,
        )
        self.alpha = nnx.Param(jnp.asarray(cfg.residual_init, dtype))
        self.inv_norm = float(cfg.avg_num_neighbors) ** (-float(cfg.neighbor_norm_exponent))

    def messages(self, h, sh, radial_feats, senders, receivers):
        """Aggregated, normalised messages ``a[N, C, D]`` in the layout ``msg.irreps_out``."""
        basis, weights = self.radial.factors(radial_feats, self.channels)
        a = self.msg(self.pre(h), sh, basis, weights, senders, receivers, h.shape[0])
        return a * jnp.asarray(self.inv_norm, h.dtype)

    def __call__(self, h, sh, radial_feats, senders, receivers):
        a = self.messages(h, sh, radial_feats, senders, receivers)
        m = self.post(a)
        m = m + self.mixer(rms_norm(m))
        return embed(h, self.irreps_in, self.irreps) + self.alpha[...] * m
