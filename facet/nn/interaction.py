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

    def channels_minor(self, feats, channels: int):
        """``[E, P, C]`` with ``P = n_out / channels``: the same numbers as
        ``self(feats).reshape(E, C, P)`` with the last two axes swapped, obtained by permuting
        the columns of the last weight matrix (the parameter layout stays channels-major)."""
        x = self._hidden(feats)
        w = self.layers[-1][...]
        k, n = w.shape
        w = w.reshape(k, channels, n // channels).transpose(0, 2, 1).reshape(k, n)
        return (x @ w).reshape(x.shape[0], n // channels, channels)

    def _hidden(self, feats):
        """Hidden SiLU layers (none in the spline form)."""
        x = feats
        for w in list(self.layers)[:-1]:
            w = w[...]
            x = jax.nn.silu((x @ w) / jnp.sqrt(w.shape[0]).astype(x.dtype))
        return x

    def __call__(self, feats):
        return self._hidden(feats) @ self.layers[-1][...]


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
        """Aggregated, normalised messages ``a[N, C, D]`` in the layout ``msg.irreps_out``.

        Edge arrays are channels-minor (``[E, D, C]``, see :mod:`facet.nn.edge_product`); the
        transposes happen on node arrays, which are smaller than edge arrays."""
        n = h.shape[0]
        x = jnp.swapaxes(self.pre(h), 1, 2)  # [N, D_in, C]
        w = self.radial.channels_minor(radial_feats, self.channels)  # [E, P, C]
        m = self.msg.channels_minor(x[senders], sh, w)  # [E, D_out, C]
        a = jax.ops.segment_sum(m, receivers, num_segments=n) * jnp.asarray(self.inv_norm, h.dtype)
        return jnp.swapaxes(a, 1, 2)

    def __call__(self, h, sh, radial_feats, senders, receivers):
        a = self.messages(h, sh, radial_feats, senders, receivers)
        m = self.post(a)
        m = m + self.mixer(rms_norm(m))
        return embed(h, self.irreps_in, self.irreps) + self.alpha[...] * m
