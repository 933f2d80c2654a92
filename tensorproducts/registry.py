"""One contract for every tensor-product variant, and the registry that holds them.

Every variant is a :class:`TensorProductSpec`: a pure function

``apply(x, y, irreps_out, weights=None) -> e3nn.IrrepsArray``

on ``e3nn.IrrepsArray`` inputs with any leading batch shape (broadcast against each other; a
channel axis is just another broadcast axis, so channels pair element-wise), plus metadata: which
``(l1, l2, l3)`` paths it can produce, how its internal weights are structured, and its asymptotic
cost. Without ``weights`` the output is the plain product of the "linear, product, linear"
setting of Xie et al. (ICML 2025); variants whose natural weights sit inside the product accept
them through ``weights`` with shape ``batch + (num_weights(...),)``.

A variant may also register a fused kernel for the product with edge spherical harmonics summed
into nodes (``edge_kernel``); :class:`tensorproducts.edge.EdgeProduct` is that contract and its
plain reference.

Variants register themselves with :func:`register`; nothing else in the code base switches on a
variant's name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import e3nn_jax as e3nn

__all__ = ["TensorProductSpec", "REGISTRY", "register", "get"]

WeightStructure = Literal["none", "path", "degree", "m"]


@dataclass(frozen=True)
class TensorProductSpec:
    """A registered tensor-product variant.

    Attributes:
        name: registry key, e.g. ``"cg-dense"``.
        apply: ``apply(x, y, irreps_out, weights=None) -> IrrepsArray``.
        paths: ``paths(irreps1, irreps2, irreps_out) -> list[(l1, p1, l2, p2, l3, p3)]``: the
            output paths this variant can produce for these inputs (multiplicity ignored).
        num_weights: ``num_weights(irreps1, irreps2, irreps_out) -> int``: length of the last
            axis of ``weights`` (0 when the variant takes none).
        weight_structure: ``"none"``, ``"path"`` (one weight per (l1, l2, l3) path), ``"degree"``
            (one per output l) or ``"m"`` (one per |m| block, SO(2) style).
        cost: asymptotic cost per product in terms of the maximal degree L, e.g. ``"O(L^6)"``.
        exact: whether the variant is equivariant to round-off (False for numerically
            approximate ones; their documented tolerance is ``tolerance``).
        tolerance: relative equivariance error guaranteed in float64.
        requires_sh_input: True when ``y`` must be spherical harmonics of a unit vector (SO(2)).
        description: one line for reports.
        edge_kernel: optional fast path of :meth:`tensorproducts.edge.EdgeProduct.__call__`,
            ``edge_kernel(product, x, sh, basis, weights, senders, receivers, num_nodes)``, equal
            to :meth:`~tensorproducts.edge.EdgeProduct.reference` to round-off (values and
            gradients); None: the reference runs.
    """

    name: str
    apply: Callable[..., e3nn.IrrepsArray]
    paths: Callable[..., list]
    num_weights: Callable[..., int]
    weight_structure: WeightStructure = "none"
    cost: str = ""
    exact: bool = True
    tolerance: float = 1e-10
    requires_sh_input: bool = False
    description: str = ""
    extra: dict = field(default_factory=dict)
    edge_kernel: Callable | None = None


REGISTRY: dict[str, TensorProductSpec] = {}


def register(spec: TensorProductSpec) -> TensorProductSpec:
    """Add ``spec`` to :data:`REGISTRY` (a name can be registered once)."""
    if spec.name in REGISTRY:
        raise ValueError(f"tensor product {spec.name!r} is already registered")
    REGISTRY[spec.name] = spec
    return spec


def get(name: str) -> TensorProductSpec:
    """The spec registered under ``name``; a ``KeyError`` lists the known names."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(
            f"unknown tensor product {name!r}; registered: {', '.join(sorted(REGISTRY))}"
        ) from None
