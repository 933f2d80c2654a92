"""The message product: node features x edge spherical harmonics, weighted by radial functions,
summed over each node's incoming edges.

The product is any variant of :data:`tensorproducts.REGISTRY` (chosen by ``ModelConfig.product``),
applied channel-wise ("uvu") through the one contract of :class:`tensorproducts.edge.EdgeProduct`:
``a[N, C, irreps_out] = sum over edges of TP(x[sender], Y(r_hat); w)`` with per-edge weights
``w[E, C, P] = basis[E, K] @ W[K, C, P]`` from the radial map.

* Variants with internal weights (``num_weights > 0``, e.g. one per CG path) get them directly.
* Weight-free variants get a factorised modulation instead, one radial weight per input irrep
  and one per output irrep of every channel:

  .. math::  m_{c} = \\rho^{out}_{c}(r) \\odot \\big( (\\rho^{in}_c(r) \\odot x_c)
             \\otimes Y(\\hat r) \\big),

  which keeps every path radially tunable with the same linear radial map.

Outputs that a variant cannot reach (e.g. pseudo irreps from Gaunt products of natural inputs)
are left out of :attr:`MessageProduct.irreps_out`; :func:`embed` places them as zeros.

A variant with a fused kernel (``cg-dense``: :mod:`tensorproducts.cg_dense_edge`) runs it; the
others run the reference of the contract. Memory layout and blocking over edges are choices of
``tensorproducts``, not of the model.
"""

from __future__ import annotations

from dataclasses import dataclass

import e3nn_jax as e3nn
import jax.numpy as jnp

import tensorproducts
from tensorproducts.edge import EdgeProduct

__all__ = ["MessageProduct", "get_product_spec", "embed"]


def get_product_spec(name: str):
    """The registered spec ``name``."""
    return tensorproducts.get(name)


@dataclass(frozen=True)
class MessageProduct:
    """Static plan of one message product (hashable; holds no arrays).

    Attributes:
        product: registry name.
        irreps_in: per-channel input layout (multiplicity one each).
        irreps_sh: spherical-harmonic layout ``0e + 1o + ...``.
        irreps_target: per-channel layout the caller wants (unreachable entries come back zero
            through :func:`embed`).
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
    def edge_product(self) -> EdgeProduct:
        return EdgeProduct(self.product, self.irreps_in, self.irreps_sh, self.irreps_out)

    @property
    def num_internal(self) -> int:
        return self.edge_product.num_internal

    @property
    def num_radial(self) -> int:
        """Radial weights per channel and edge."""
        return self.edge_product.num_weights

    def validate(self) -> None:
        if len(self.irreps_out) == 0:
            raise ValueError(
                f"tensor product {self.product!r} produces none of {self.irreps_target} from "
                f"{self.irreps_in} x {self.irreps_sh}"
            )

    def __call__(self, x, sh, basis, weights, senders, receivers, num_nodes: int):
        """``x[N, C, D_in]``, ``sh[E, D_sh]``, per-edge weights ``basis[E, K] @ weights[K, C,
        num_radial]``, edge ends -> ``a[N, C, D_out]`` in the layout :attr:`irreps_out`
        (:meth:`tensorproducts.edge.EdgeProduct.__call__`)."""
        return self.edge_product(x, sh, basis, weights, senders, receivers, num_nodes)


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
