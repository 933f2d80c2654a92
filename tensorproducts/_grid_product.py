r"""The body shared by the two grid products, ``gaunt-grid`` and ``vector-gaunt-grid``.

Both read each input as one signal per parity class (``p = p_val (-1)^l``; :func:`split_classes`),
bring the signals of both inputs onto an exact grid, combine every pair of classes pointwise and
project the result back onto the output irreps of its class (:func:`out_blocks`). They differ in
three places, which :func:`grid_product` takes as arguments:

* the selection rule ``sign``: ``+1`` for the symmetric paths (:math:`l_1+l_2+l_3` even, output
  class :math:`p_1 p_2`: Gaunt), ``-1`` for the antisymmetric ones (odd, class :math:`-p_1 p_2`:
  the cross product of surface gradients);
* ``to_signal``: what a class signal is on the grid (its values, or its two tangent components);
* ``multiply``: how two signals combine pointwise, and ``product_grid``: the minimal exact grid.
"""

from __future__ import annotations

import functools

import e3nn_jax as e3nn
import jax.numpy as jnp
import numpy as np

from . import _irreps, s2grid
from .registry import TensorProductSpec

__all__ = [
    "class_layout",
    "split_classes",
    "out_blocks",
    "parity_paths",
    "grid_product",
    "grid_spec",
]


@functools.cache
def class_layout(irreps: str) -> tuple[tuple[int, int, np.ndarray | None], ...]:
    """Per parity class of ``irreps``: ``(p_val, lmax, index)``.

    ``index`` gathers the flat ``(lmax+1)^2`` coefficients of that class from the input array
    with one trailing zero appended (position ``irreps.dim``); ``None`` when the gather is the
    identity (the input already is ``s2_irreps(lmax, p_val)``).
    """
    irreps = e3nn.Irreps(irreps)
    out = []
    for pv, ls in sorted(s2grid.parity_classes(irreps).items(), reverse=True):
        lmax = max(ls)
        index = np.full((lmax + 1) ** 2, irreps.dim, dtype=np.int32)
        for (_, ir), sl in zip(irreps, irreps.slices(), strict=True):
            if ir.p * (-1) ** ir.l == pv:
                index[ir.l**2 : (ir.l + 1) ** 2] = np.arange(sl.start, sl.stop)
        identity = index.size == irreps.dim and np.array_equal(index, np.arange(irreps.dim))
        out.append((pv, lmax, None if identity else index))
    return tuple(out)


def split_classes(a_t, irreps) -> dict[int, tuple[int, jnp.ndarray]]:
    """``{p_val: (lmax, coeffs [(lmax+1)^2, N])}`` of a feature-major ``[irreps.dim, N]`` array."""
    out = {}
    for pv, lmax, index in class_layout(str(irreps)):
        if index is None:
            out[pv] = (lmax, a_t)
        else:
            padded = jnp.concatenate([a_t, jnp.zeros_like(a_t[:1])], axis=0)
            out[pv] = (lmax, padded[index])  # whole-row gather
    return out


def out_blocks(coeffs: dict[int, jnp.ndarray], irreps_out) -> dict:
    """``{ir: [N, 2l+1]}`` from feature-major class coefficients ``{p_val: [(L+1)^2, N]}``."""
    blocks = {}
    for _, ir in irreps_out:
        pv = ir.p * (-1) ** ir.l
        if pv in coeffs:
            blocks[ir] = coeffs[pv][ir.l**2 : (ir.l + 1) ** 2].T
    return blocks


def _keeps(sign: int):
    """The selection rule on ``(l1, l2, l3)``: ``(-1)^(l1+l2+l3) == sign``."""
    return lambda l1, l2, l3: (-1) ** (l1 + l2 + l3) == sign


def parity_paths(sign: int, irreps1, irreps2, irreps_out) -> list:
    """The CG paths (:func:`tensorproducts._irreps.cg_paths` order) with
    ``(-1)^(l1+l2+l3) == sign``."""
    keep = _keeps(sign)
    return [p for p in _irreps.cg_paths(irreps1, irreps2, irreps_out) if keep(p[0], p[2], p[4])]


def grid_product(
    name: str,
    sign: int,
    x: e3nn.IrrepsArray,
    y: e3nn.IrrepsArray,
    irreps_out,
    weights,
    resolution,
    *,
    product_grid,
    to_signal,
    multiply,
) -> e3nn.IrrepsArray:
    """The product of ``x`` and ``y`` onto ``irreps_out`` (module docstring).

    ``product_grid(ir1, ir2, out) -> (res_beta, res_alpha)`` is the exact grid (``resolution``
    overrides it), ``to_signal(coeffs [(L+1)^2, N], res_beta, res_alpha)`` a class signal on it,
    ``multiply(signal_x, signal_y) -> [res_alpha, res_beta, N]`` the pointwise combination.
    """
    if weights is not None:
        raise ValueError(f"{name}: takes no internal weights (num_weights = 0), got weights")
    ir1, ir2, out = _irreps.resolve_irreps(x, y, irreps_out, name, _keeps(sign))
    xa, ya, lead, dtype = _irreps.broadcast_inputs(x, y)
    if out.dim == 0:
        return _irreps.assemble(out, {}, lead, dtype)
    res_beta, res_alpha = resolution or product_grid(ir1, ir2, out)
    sx = {pv: to_signal(c, res_beta, res_alpha) for pv, (_, c) in split_classes(xa.T, ir1).items()}
    sy = {pv: to_signal(c, res_beta, res_alpha) for pv, (_, c) in split_classes(ya.T, ir2).items()}
    out_classes = s2grid.parity_classes(out)
    prods: dict = {}
    for p1, f1 in sx.items():
        for p2, f2 in sy.items():
            pv = sign * p1 * p2
            if pv in out_classes:
                h = multiply(f1, f2)
                prods[pv] = h if pv not in prods else prods[pv] + h
    coeffs = {pv: s2grid.from_grid_fm(h, max(out_classes[pv])) for pv, h in prods.items()}
    return _irreps.assemble(out, out_blocks(coeffs, out), lead, dtype)


def grid_spec(
    name: str, apply, sign: int, *, description: str, normalisation, product_grid
) -> TensorProductSpec:
    """The registry entry of a grid product: the paths of rule ``sign``, no internal weights,
    exact to round-off, ``O(L^3)``; ``extra`` holds the per-path ``normalisation`` relative to
    ``cg-dense`` and the grid rule ``resolution``."""
    return TensorProductSpec(
        name=name,
        apply=apply,
        paths=functools.partial(parity_paths, sign),
        num_weights=lambda irreps1, irreps2, irreps_out: 0,
        weight_structure="none",
        cost="O(L^3)",
        exact=True,
        tolerance=1e-12,
        description=description,
        extra={"normalisation": normalisation, "resolution": product_grid},
    )
