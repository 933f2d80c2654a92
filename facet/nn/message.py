"""The message product: node features x edge spherical harmonics, weighted by radial functions.

The product is any variant of :data:`tensorproducts.REGISTRY` (chosen by ``ModelConfig.product``),
applied channel-wise ("uvu"): ``x[E, C, irreps_in]`` times ``Y(r_hat)[E, 1, irreps_sh]``, channels
broadcast. Its per-edge weights come from the radial map:

* variants with internal weights (``num_weights > 0``, e.g. one per CG path) get them directly,
  ``w[E, C, num_weights] = R(r)``;
* weight-free variants get a factorised modulation instead, one radial weight per input irrep and
  one per output irrep of every channel:

  .. math::  m_{c} = \\rho^{out}_{c}(r) \\odot \\big( (\\rho^{in}_c(r) \\odot x_c)
             \\otimes Y(\\hat r) \\big),

  which keeps every path radially tunable with the same linear radial map.

Outputs that a variant cannot reach (e.g. pseudo irreps from Gaunt products of natural inputs)
are zero in the returned layout.

Variants listed in :data:`facet.nn.edge_product.EDGE_PRODUCTS` (``cg-dense``) are evaluated by a
fused product that contracts ``Y`` with the coupling tables once per edge instead of once per
channel (same function, same weight layout); the others go through the generic registry product.
The model calls :meth:`MessageProduct.channels_minor` (arrays ``[E, D, C]``, channels contiguous);
``__call__`` keeps the channels-major layout ``[E, C, D]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import e3nn_jax as e3nn
import jax.numpy as jnp
import numpy as np

from .edge_product import EDGE_PRODUCTS

__all__ = ["MessageProduct", "get_product_spec", "embed"]


def get_product_spec(name: str):
    """The registered spec ``name`` (importing :mod:`tensorproducts` registers its variants)."""
    import tensorproducts

    return tensorproducts.get(name)


@dataclass(frozen=True)
class MessageProduct:
    """Static plan of one message product (hashable; holds no arrays).

    Attributes:
        product: registry name.
        irreps_in: per-channel input layout (multiplicity one each).
        irreps_sh: spherical-harmonic layout ``0e + 1o + ...``.
        irreps_target: per-channel layout the caller wants (unreachable entries come back zero).
    """

    product: str
    irreps_in: e3nn.Irreps
    irreps_sh: e3nn.Irreps
    irreps_target: e3nn.Irreps

    @property
    def spec(self):
        return get_product_spec(self.product)

    @property
    def irreps_out(self) -> e3nn.Irreps:
        """The entries of ``irreps_target`` this product can produce from these inputs."""
        reach = {
            (l3, p3)
            for (_, _, _, _, l3, p3) in self.spec.paths(
                self.irreps_in, self.irreps_sh, self.irreps_target
            )
        }
        return e3nn.Irreps([(1, ir) for _, ir in self.irreps_target if (ir.l, ir.p) in reach])

    @property
    def num_internal(self) -> int:
        return int(self.spec.num_weights(self.irreps_in, self.irreps_sh, self.irreps_out))

    @property
    def num_radial(self) -> int:
        """Radial weights per channel and edge."""
        n = self.num_internal
        return n if n > 0 else len(self.irreps_in) + len(self.irreps_out)

    def validate(self) -> None:
        if len(self.irreps_out) == 0:
            raise ValueError(
                f"tensor product {self.product!r} produces none of {self.irreps_target} from "
                f"{self.irreps_in} x {self.irreps_sh}"
            )

    def fused(self):
        """The fused channels-minor product of :data:`EDGE_PRODUCTS`, or None (generic path)."""
        build = EDGE_PRODUCTS.get(self.product)
        if build is None or self.num_internal == 0:
            return None
        return build(self.irreps_in, self.irreps_sh, self.irreps_out)

    def __call__(self, x, sh, radial):
        """``x[E, C, D_in]``, ``sh[E, D_sh]``, ``radial[E, C, num_radial]`` -> ``[E, C, D_out]``
        in the layout :attr:`irreps_out` (use :func:`embed` for the target layout)."""
        fused = self.fused()
        if fused is None:
            return self.generic(x, sh, radial)
        return _swap(fused(_swap(x), sh, _swap(radial)))

    def channels_minor(self, x, sh, radial):
        """As :meth:`__call__` with channels last: ``x[E, D_in, C]``, ``radial[E, num_radial,
        C]`` -> ``[E, D_out, C]``."""
        fused = self.fused()
        if fused is None:
            return _swap(self.generic(_swap(x), sh, _swap(radial)))
        return fused(x, sh, radial)

    def generic(self, x, sh, radial):
        """:meth:`__call__` through the generic registry product (the reference of the fused
        path)."""
        spec = self.spec
        irreps_out = self.irreps_out
        y = e3nn.IrrepsArray(self.irreps_sh, sh[:, None, :])
        n_int = self.num_internal
        if n_int > 0:
            out = spec.apply(e3nn.IrrepsArray(self.irreps_in, x), y, irreps_out, weights=radial)
            out = out.array
        else:
            n_in = len(self.irreps_in)
            w_in = _expand(radial[..., :n_in], self.irreps_in)
            w_out = _expand(radial[..., n_in:], irreps_out)
            out = spec.apply(e3nn.IrrepsArray(self.irreps_in, x * w_in), y, irreps_out).array
            out = out * w_out
        return out


def _swap(a):
    return jnp.swapaxes(a, -1, -2)


def _expand(w, irreps: e3nn.Irreps):
    """``w[..., len(irreps)] -> [..., irreps.dim]`` repeating each weight over its ``2l+1``."""
    reps = np.array([ir.dim for _, ir in irreps])
    return jnp.repeat(w, reps, axis=-1, total_repeat_length=int(reps.sum()))


def embed(x, irreps_have: e3nn.Irreps, irreps_target: e3nn.Irreps):
    """Place ``x`` (layout ``irreps_have``) into ``irreps_target``, zeros elsewhere."""
    if irreps_have == irreps_target:
        return x
    have = {ir: sl for (_, ir), sl in zip(irreps_have, irreps_have.slices(), strict=True)}
    blocks = []
    for _, ir in irreps_target:
        if ir in have:
            blocks.append(x[..., have[ir]])
        else:
            blocks.append(jnp.zeros(x.shape[:-1] + (ir.dim,), x.dtype))
    return jnp.concatenate(blocks, axis=-1)
