r"""Shared input/output plumbing of the grid-free product variants (gaunt-fourier, matrix, so2).

Not a public API. Every function here is pure and works on static irreps metadata (NumPy index
arrays built once per irreps) plus one gather on the traced array.

**Parity classes.** A multiplicity-1 irrep :math:`(l, p)` belongs to the *class*
:math:`s = p\,(-1)^l`. Class :math:`+1` holds the degrees of an ordinary function on the sphere
(``0e, 1o, 2e, ...``); class :math:`-1` those of a pseudo-scalar function (``0o, 1e, 2o, ...``).
Multiplying a class-:math:`s_1` signal by a class-:math:`s_2` signal gives a class
:math:`s_1 s_2` signal, which is how the grid and Fourier products stay E(3)-correct for inputs
of either parity.

**Real spherical harmonics** (:func:`real_sh`): e3nn-jax's convention, y is the polar axis,
``normalization="component"`` (:math:`\sum_m Y_{lm}(\hat r)^2 = 2l+1`),

.. math:: Y_{lm}(\hat r) = (-1)^{|m|} \sqrt{(2l+1)\frac{(l-|m|)!}{(l+|m|)!}}
          P_l^{|m|}(\cos\beta)\,\Phi_m(\alpha),

with :math:`\cos\beta = \hat r_y`, :math:`\alpha = \operatorname{atan2}(\hat r_x, \hat r_z)`,
:math:`P_l^m` with the Condon-Shortley phase (scipy's ``lpmv``), :math:`\Phi_0 = 1`,
:math:`\Phi_{m>0} = \sqrt2\cos m\alpha`, :math:`\Phi_{m<0} = \sqrt2\sin|m|\alpha`. Computed in
NumPy float64 so that change-of-basis tables are exact to round-off.
"""

from __future__ import annotations

import functools

import e3nn_jax as e3nn
import jax.numpy as jnp
import numpy as np
from scipy.special import gammaln, lpmv

__all__ = [
    "real_sh",
    "parity_class",
    "check_mul1",
    "class_degrees",
    "gather_dense",
    "assemble_output",
    "broadcast_leading",
]


def real_sh(lmax: int, xyz: np.ndarray) -> np.ndarray:
    """Real spherical harmonics ``(..., (lmax+1)^2)`` of the unit vectors ``xyz`` (NumPy, f64)."""
    xyz = np.asarray(xyz, dtype=np.float64)
    xyz = xyz / np.linalg.norm(xyz, axis=-1, keepdims=True)
    alpha = np.arctan2(xyz[..., 0], xyz[..., 2])
    cos_b = np.clip(xyz[..., 1], -1.0, 1.0)
    out = []
    for l in range(lmax + 1):
        for m in range(-l, l + 1):
            am = abs(m)
            norm = np.sqrt((2 * l + 1) * np.exp(gammaln(l - am + 1) - gammaln(l + am + 1)))
            leg = (-1) ** am * norm * lpmv(am, l, cos_b)
            if m > 0:
                phi = np.sqrt(2.0) * np.cos(m * alpha)
            elif m < 0:
                phi = np.sqrt(2.0) * np.sin(am * alpha)
            else:
                phi = np.ones_like(alpha)
            out.append(leg * phi)
    return np.stack(out, axis=-1)


def parity_class(ir: e3nn.Irrep) -> int:
    """Class ``p (-1)^l`` of an irrep: +1 for function-like (0e, 1o, ...), -1 otherwise."""
    return int(ir.p * (-1) ** ir.l)


def check_mul1(irreps: e3nn.Irreps, what: str, variant: str) -> None:
    """Raise unless every irrep of ``irreps`` appears once with multiplicity 1."""
    seen = set()
    for mul, ir in irreps:
        if mul != 1 or ir in seen:
            raise ValueError(
                f"{variant}: {what} irreps {irreps} must hold each irrep once with multiplicity 1; "
                "put channels on a leading axis instead (IrrepsArray.mul_to_axis())"
            )
        seen.add(ir)


@functools.cache
def class_degrees(irreps: e3nn.Irreps) -> dict[int, int]:
    """``{class: lmax}`` for the parity classes present in ``irreps``."""
    out: dict[int, int] = {}
    for _, ir in irreps:
        s = parity_class(ir)
        out[s] = max(out.get(s, 0), ir.l)
    return out


@functools.cache
def _gather_index(irreps: e3nn.Irreps, cls: int, lmax: int) -> np.ndarray:
    """Index into ``[array, 0]`` giving the dense class-``cls`` coefficients up to ``lmax``."""
    idx = np.full((lmax + 1) ** 2, irreps.dim, dtype=np.int32)
    offset = 0
    for mul, ir in irreps:
        if parity_class(ir) == cls and ir.l <= lmax:
            idx[ir.l**2 : (ir.l + 1) ** 2] = np.arange(offset, offset + ir.dim)
        offset += mul * ir.dim
    return idx


def gather_dense(x: e3nn.IrrepsArray, cls: int, lmax: int) -> jnp.ndarray:
    """Dense ``(..., (lmax+1)^2)`` class-``cls`` coefficients of ``x`` (zeros filled)."""
    idx = _gather_index(x.irreps, cls, lmax)
    if idx.size == x.irreps.dim and np.array_equal(idx, np.arange(idx.size)):
        return x.array  # already dense in this class (e.g. s2_irreps): no gather, no copy
    ext = jnp.concatenate([x.array, jnp.zeros(x.shape[:-1] + (1,), x.dtype)], axis=-1)
    return ext[..., idx]


def assemble_output(
    irreps_out: e3nn.Irreps,
    dense: dict[int, jnp.ndarray],
    leading: tuple[int, ...],
    dtype,
) -> e3nn.IrrepsArray:
    """Build the ``irreps_out`` array from dense per-class coefficients ``{class: (..., D)}``.

    An irrep whose class is absent, or whose degree exceeds the class's available degree, is
    exactly zero in these products (not dropped: it is present in the output, as zeros).
    """
    # irreps_out is exactly the dense layout of one class (e.g. s2_irreps(L)), filled up to its
    # degree: the array as it is, without slicing it into blocks and concatenating them again.
    classes = {parity_class(ir) for _, ir in irreps_out}
    if len(classes) == 1 and all(mul == 1 for mul, _ in irreps_out):
        d = dense.get(classes.pop())
        ls = [ir.l for _, ir in irreps_out]
        if d is not None and ls == list(range(len(ls))) and d.shape[-1] == len(ls) ** 2:
            arr = jnp.broadcast_to(d, leading + (d.shape[-1],)).astype(dtype)
            return e3nn.IrrepsArray(irreps_out, arr)
    chunks = []
    for mul, ir in irreps_out:
        s = parity_class(ir)
        d = dense.get(s)
        if d is None or (ir.l + 1) ** 2 > d.shape[-1]:
            block = jnp.zeros(leading + (ir.dim,), dtype)
        else:
            block = jnp.broadcast_to(d[..., ir.l**2 : (ir.l + 1) ** 2], leading + (ir.dim,))
        chunks.extend([block] * mul)
    if not chunks:
        return e3nn.zeros(irreps_out, leading, dtype)
    return e3nn.IrrepsArray(irreps_out, jnp.concatenate(chunks, axis=-1).astype(dtype))


def broadcast_leading(x: e3nn.IrrepsArray, y: e3nn.IrrepsArray) -> tuple[int, ...]:
    """The broadcast leading shape of ``x`` and ``y`` (a clear error when incompatible)."""
    try:
        return tuple(np.broadcast_shapes(x.shape[:-1], y.shape[:-1]))
    except ValueError:
        raise ValueError(
            f"leading shapes {x.shape[:-1]} and {y.shape[:-1]} do not broadcast"
        ) from None
