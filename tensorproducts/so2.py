r"""``so2``: the SO(2) / eSCN product with the spherical harmonics of an edge direction.

Passaro & Zitnick, "Reducing SO(3) convolutions to SO(2) for efficient equivariant GNNs",
ICML 2023 (arXiv 2302.03655). ``y`` must be the spherical harmonics of a direction
:math:`\hat r` (``requires_sh_input=True``); :math:`\hat r` is read from ``y``'s degree-1 block
(e3nn's ``l = 1`` harmonics are proportional to :math:`(x, y, z)`).

1. Rotate into the edge frame. With :math:`\alpha = \operatorname{atan2}(\hat r_x, \hat r_z)`,
   :math:`\beta = \arccos \hat r_y` and :math:`R = R_y(\alpha) R_x(\beta)` (so
   :math:`R \hat e_y = \hat r`; y is e3nn's polar axis), e3nn's Wigner matrices factor as
   :math:`D^l(R) = D^l_y(\alpha)\, J_l\, D^l_y(\beta)\, J_l`, where :math:`D^l_y(\phi)` only mixes
   :math:`\pm m` (:math:`\cos m\phi`, :math:`\sin m\phi`) and :math:`J_l` is the constant matrix
   of the axis swap :math:`(x, y, z) \mapsto (-y, -x, z)`. So
   :math:`x' = D(R)^\top x` costs :math:`O(l)` for each :math:`D_y` and :math:`O(l^2)` for each
   :math:`J_l`: :math:`O(L^3)` per edge, no matrix exponentials.
2. In the edge frame :math:`y' = D(R)^\top y` is non-zero only at :math:`m = 0`, and the real
   Clebsch-Gordan tensor with :math:`m_2 = 0` couples :math:`m_1` only to :math:`m_3 = \pm m_1`:

   .. math:: z'_{l_3, +m} = \sum_{l_1} a^{m}_{l_1 l_3} x'_{l_1,+m} + b^{m}_{l_1 l_3} x'_{l_1,-m},
             \qquad
             z'_{l_3, -m} = \sum_{l_1} a^{m}_{l_1 l_3} x'_{l_1,-m} - b^{m}_{l_1 l_3} x'_{l_1,+m},

   the 2x2 rotation-like blocks of eSCN (:math:`b^0 = 0`). Paths with :math:`l_1+l_2+l_3` even
   give :math:`a`, odd ones :math:`b`; with parity, a given input irrep :math:`(l_1, p_1)` and
   output irrep :math:`(l_3, p_3)` are joined by :math:`a` when
   :math:`p_3 = p_1 s_y (-1)^{l_1+l_3}` and by :math:`b` otherwise (:math:`s_y` the class of ``y``),
   so each (input irrep, output irrep, :math:`|m|`) pair has exactly one weight and the product is
   O(3)-equivariant.
3. Rotate back: :math:`z = D(R)\, z'`.

Without ``weights`` the per-m weights are the Clebsch-Gordan ones,
:math:`a^m_{l_1 l_3} = \sum_{l_2} \sqrt{2l_3+1}\, y'_{l_2 0}\, C^{l_1 l_2 l_3}_{m, 0, m}` (and
:math:`b` from :math:`C_{-m, 0, m}`), so the result equals ``cg-dense`` of ``x`` and ``y``
(e3nn ``"component"`` normalisation) to round-off. With ``weights`` (``weight_structure="m"``,
shape ``batch + (num_weights,)``, slots listed by :func:`weight_slots`) the mixing is free: that is
eSCN's SO(2) convolution, and ``y`` only supplies the direction. :func:`cg_weights` converts
per-path CG weights into these slots.

Cost per edge: rotations :math:`O(L^3)`, mixing :math:`O(L^3)` (vs :math:`O(L^6)` for the dense
CG product with :math:`L_{sh} = L`).
"""

from __future__ import annotations

import functools
import math

import e3nn_jax as e3nn
import jax.numpy as jnp
import numpy as np

from . import _irreps
from . import _irreps_io as io
from .clebsch_gordan import clebsch_gordan, triangle
from .registry import TensorProductSpec, register

__all__ = [
    "so2_product",
    "weight_slots",
    "cg_weights",
    "frame_m0",
    "wigner_j",
    "edge_angles",
    "rotate",
]

NAME = "so2"
_SWAP = np.array([[0.0, -1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])


@functools.cache
def wigner_j(l: int) -> np.ndarray:
    r""":math:`J_l`: :math:`Y_l(S \hat r) = J_l Y_l(\hat r)` for the axis swap ``S`` (float64).

    Solved by least squares from :math:`8(2l+1)` random points; exact to round-off (the system is
    consistent and well conditioned).
    """
    rng = np.random.default_rng(1234 + l)
    r = rng.normal(size=(8 * (2 * l + 1), 3))
    a = io.real_sh(l, r)[:, l * l :]
    b = io.real_sh(l, r @ _SWAP.T)[:, l * l :]
    jt, *_ = np.linalg.lstsq(a, b, rcond=None)
    j = jt.T
    j[np.abs(j) < 1e-13] = 0.0
    j.setflags(write=False)
    return j


def edge_angles(y: e3nn.IrrepsArray):
    """``(alpha, beta)`` of the direction in ``y``'s degree-1 block, shape ``y.shape[:-1]``."""
    ones = [ir for _, ir in y.irreps if ir.l == 1]
    if not ones:
        raise ValueError(
            f"{NAME}: y must be spherical harmonics of an edge direction including degree 1 "
            f"(1o or 1e) to locate the edge; got {y.irreps}"
        )
    v = y.filter(keep=ones[:1]).array  # proportional to (x, y, z)
    alpha = jnp.arctan2(v[..., 0], v[..., 2])
    beta = jnp.arctan2(jnp.sqrt(v[..., 0] ** 2 + v[..., 2] ** 2), v[..., 1])
    return alpha, beta


@functools.cache
def _rot_plan(irreps: e3nn.Irreps):
    """Static per-component data: ``m``, index of ``-m`` in the same irrep, and per-irrep slices."""
    ms, flip = [], []
    off = 0
    for _, ir in irreps:
        l = ir.l
        ms.extend(range(-l, l + 1))
        flip.extend(off + l - np.arange(-l, l + 1))
        off += ir.dim
    return np.array(ms, dtype=np.float64), np.array(flip, dtype=np.int32)


def _rot_y(a: jnp.ndarray, irreps: e3nn.Irreps, phi: jnp.ndarray, sign: float) -> jnp.ndarray:
    r""":math:`D_y(\text{sign}\,\phi)` applied to every irrep block: ``(D v)_m = cos(m phi) v_m -
    sin(m phi) v_{-m}`` (e3nn's real basis)."""
    ms, flip = _rot_plan(irreps)
    ang = phi[..., None] * jnp.asarray(ms, a.dtype)
    return jnp.cos(ang) * a - sign * jnp.sin(ang) * a[..., flip]


def _apply_j(a: jnp.ndarray, irreps: e3nn.Irreps) -> jnp.ndarray:
    parts, off = [], 0
    for _, ir in irreps:
        blk = a[..., off : off + ir.dim]
        if ir.l > 0:
            blk = blk @ jnp.asarray(wigner_j(ir.l).T, a.dtype)
        parts.append(blk)
        off += ir.dim
    return jnp.concatenate(parts, axis=-1)


def rotate(a: jnp.ndarray, irreps: e3nn.Irreps, alpha, beta, inverse: bool) -> jnp.ndarray:
    r"""Apply :math:`D(R)` (``inverse=False``) or :math:`D(R)^\top` to ``a`` (``(..., dim)``)."""
    if inverse:  # D^T = J D_y(-beta) J D_y(-alpha)
        a = _rot_y(a, irreps, alpha, -1.0)
        a = _apply_j(a, irreps)
        a = _rot_y(a, irreps, beta, -1.0)
        return _apply_j(a, irreps)
    a = _apply_j(a, irreps)
    a = _rot_y(a, irreps, beta, 1.0)
    a = _apply_j(a, irreps)
    return _rot_y(a, irreps, alpha, 1.0)


def _y_class(irreps_y: e3nn.Irreps) -> int:
    classes = {io.parity_class(ir) for _, ir in irreps_y}
    if len(classes) != 1:
        raise ValueError(
            f"{NAME}: y must be spherical harmonics (one parity class), got {irreps_y}"
        )
    return classes.pop()


@functools.cache
def weight_slots(irreps1: e3nn.Irreps, irreps2: e3nn.Irreps, irreps_out: e3nn.Irreps):
    """Weight slots ``(i1, i3, m, kind)``, kind ``"a"`` (m -> m) or ``"b"`` (m -> -m).

    One slot per (input irrep ``i1``, output irrep ``i3``, ``0 <= m <= min(l1, l3)``) that some
    degree of ``irreps2`` connects with the right parity; ``b`` slots have ``m >= 1``.
    """
    irreps1, irreps2, irreps_out = (e3nn.Irreps(i) for i in (irreps1, irreps2, irreps_out))
    sy = _y_class(irreps2)
    l2s = [ir.l for _, ir in irreps2]
    slots = []
    for i1, (_, ir1) in enumerate(irreps1):
        for i3, (_, ir3) in enumerate(irreps_out):
            kind = "a" if ir3.p == ir1.p * sy * (-1) ** (ir1.l + ir3.l) else "b"
            want = 0 if kind == "a" else 1  # parity of l1 + l2 + l3 for this kind
            if not any(triangle(ir1.l, l2, ir3.l) and (ir1.l + l2 + ir3.l) % 2 == want
                       for l2 in l2s):  # fmt: skip
                continue
            for m in range(1 if kind == "b" else 0, min(ir1.l, ir3.l) + 1):
                slots.append((i1, i3, m, kind))
    return tuple(slots)


@functools.cache
def _cg_table(irreps1: e3nn.Irreps, irreps2: e3nn.Irreps, irreps_out: e3nn.Irreps):
    """``(T, j)``: ``T[p, k]`` is slot ``k``'s weight per unit ``y'_{l2, 0}`` from CG path ``p``
    (``_irreps.cg_paths`` order, cg-dense's scale), ``j[p]`` the index of that path's irrep of y."""
    ir1s = [ir for _, ir in irreps1]
    ir2s = [ir for _, ir in irreps2]
    outs = [ir for _, ir in irreps_out]
    paths = _irreps.cg_paths(irreps1, irreps2, irreps_out)
    slots = weight_slots(irreps1, irreps2, irreps_out)
    t = np.zeros((len(paths), len(slots)))
    jdx = np.zeros(len(paths), dtype=np.int32)
    for p, (l1, p1, l2, p2, l3, p3) in enumerate(paths):
        i1 = ir1s.index(e3nn.Irrep(l1, p1))
        i3 = outs.index(e3nn.Irrep(l3, p3))
        jdx[p] = ir2s.index(e3nn.Irrep(l2, p2))
        c = math.sqrt(2 * l3 + 1) * clebsch_gordan(l1, l2, l3)[:, l2, :]  # m2 = 0
        for k, (s1, s3, m, kind) in enumerate(slots):
            if (s1, s3) != (i1, i3):
                continue
            t[p, k] = c[l1 + m, l3 + m] if kind == "a" else c[l1 - m, l3 + m]
            if m > 0:  # the eSCN block structure this module relies on
                ok = (
                    abs(c[l1 - m, l3 - m] - t[p, k]) < 1e-12 and abs(c[l1 + m, l3 - m]) < 1e-12
                    if kind == "a"
                    else abs(c[l1 + m, l3 - m] + t[p, k]) < 1e-12 and abs(c[l1 + m, l3 + m]) < 1e-12
                )
                if not ok:
                    raise AssertionError(f"CG({l1},{l2},{l3}) at m2=0 lacks the eSCN structure")
    return t, jdx


def frame_m0(y: e3nn.IrrepsArray) -> jnp.ndarray:
    """``(..., num_irreps(y))``: the ``m = 0`` component of each irrep of ``y`` in its own edge
    frame (all other components vanish there when ``y`` is SH of a direction)."""
    alpha, beta = edge_angles(y)
    y_rot = rotate(y.array, y.irreps, alpha, beta, inverse=True)
    offs = np.cumsum([0] + [ir.dim for _, ir in y.irreps])[:-1]
    return y_rot[..., offs + np.array([ir.l for _, ir in y.irreps])]


def cg_weights(
    irreps1, irreps2, irreps_out, y_frame: jnp.ndarray, path_weights=None
) -> jnp.ndarray:
    r"""Slot weights that make :func:`so2_product` equal cg-dense with ``path_weights``.

    Args:
        y_frame: ``(..., num_irreps(y))``, the ``m = 0`` components of ``y`` in its edge frame
            (for unit-vector SH with ``"component"`` normalisation, :math:`\sqrt{2l_2+1}`).
        path_weights: optional ``(..., num_paths)`` per-path weights in ``_irreps.cg_paths``
            order (cg-dense's ``weights``); ``None`` means all ones.
    """
    t, jdx = _cg_table(*(e3nn.Irreps(i) for i in (irreps1, irreps2, irreps_out)))
    per_path = y_frame[..., jdx]
    if path_weights is not None:
        per_path = per_path * jnp.asarray(path_weights, y_frame.dtype)
    return per_path @ jnp.asarray(t, y_frame.dtype)


@functools.cache
def _mix_plan(irreps1: e3nn.Irreps, irreps_out: e3nn.Irreps, slots: tuple):
    """Gather indices for the per-m mixing: ``x`` positions of ``(m, i1, +/-)``, weight positions
    of ``(m, i1, i3)`` for a and b, and output positions back from ``(sign, m, i3)``."""
    n1, n3 = len(irreps1), len(irreps_out)
    mmax = max(ir.l for _, ir in irreps1)
    offs1 = np.concatenate([[0], np.cumsum([ir.dim for _, ir in irreps1])])
    d1 = int(offs1[-1])
    xp = np.full((mmax + 1, n1), d1, dtype=np.int32)
    xn = np.full((mmax + 1, n1), d1, dtype=np.int32)
    for i1, (_, ir) in enumerate(irreps1):
        for m in range(0, ir.l + 1):
            xp[m, i1] = offs1[i1] + ir.l + m
            if m > 0:
                xn[m, i1] = offs1[i1] + ir.l - m
    nw = len(slots)
    wa = np.full((mmax + 1, n1, n3), nw, dtype=np.int32)
    wb = np.full((mmax + 1, n1, n3), nw, dtype=np.int32)
    for k, (i1, i3, m, kind) in enumerate(slots):
        (wa if kind == "a" else wb)[m, i1, i3] = k
    # output: flattened [zp (M+1, n3), zn (M+1, n3), 0]
    zero = 2 * (mmax + 1) * n3
    pos = []
    for i3, (_, ir) in enumerate(irreps_out):
        for m in range(-ir.l, ir.l + 1):
            if abs(m) > mmax:
                pos.append(zero)
            elif m >= 0:
                pos.append(m * n3 + i3)
            else:
                pos.append((mmax + 1) * n3 + (-m) * n3 + i3)
    return xp, xn, wa, wb, np.array(pos, dtype=np.int32)


def so2_product(
    x: e3nn.IrrepsArray, y: e3nn.IrrepsArray, irreps_out=None, weights=None
) -> e3nn.IrrepsArray:
    """SO(2)-frame product of ``x`` with the edge spherical harmonics ``y`` (module docstring)."""
    ir1, ir2, out_ir = _irreps.resolve_irreps(x, y, irreps_out, NAME)
    slots = weight_slots(ir1, ir2, out_ir)
    dtype = jnp.result_type(x.dtype, y.dtype)
    alpha, beta = edge_angles(y.astype(dtype))
    if weights is None:
        w = cg_weights(ir1, ir2, out_ir, frame_m0(y.astype(dtype)))
    else:
        w = _irreps.check_weights(weights, len(slots), NAME).astype(dtype)
    lead = tuple(np.broadcast_shapes(x.shape[:-1], y.shape[:-1], w.shape[:-1]))
    if not slots or out_ir.dim == 0:
        return e3nn.zeros(out_ir, lead, dtype)

    xr = rotate(x.array.astype(dtype), ir1, alpha, beta, inverse=True)
    xp_i, xn_i, wa_i, wb_i, pos = _mix_plan(ir1, out_ir, slots)
    xe = jnp.concatenate([xr, jnp.zeros(xr.shape[:-1] + (1,), dtype)], axis=-1)
    xp, xn = xe[..., xp_i], xe[..., xn_i]  # (..., M+1, n1)
    we = jnp.concatenate([w, jnp.zeros(w.shape[:-1] + (1,), dtype)], axis=-1)
    wa, wb = we[..., wa_i], we[..., wb_i]  # (..., M+1, n1, n3)
    zp = jnp.einsum("...mi,...mij->...mj", xp, wa) + jnp.einsum("...mi,...mij->...mj", xn, wb)
    zn = jnp.einsum("...mi,...mij->...mj", xn, wa) - jnp.einsum("...mi,...mij->...mj", xp, wb)
    flat = jnp.concatenate(
        [zp.reshape(zp.shape[:-2] + (-1,)), zn.reshape(zn.shape[:-2] + (-1,))], axis=-1
    )
    flat = jnp.concatenate([flat, jnp.zeros(flat.shape[:-1] + (1,), dtype)], axis=-1)
    z = flat[..., pos]
    z = rotate(z, out_ir, alpha, beta, inverse=False)
    z = jnp.broadcast_to(z, lead + (out_ir.dim,))
    return e3nn.IrrepsArray(out_ir, z)


SPEC = register(
    TensorProductSpec(
        name=NAME,
        apply=so2_product,
        paths=_irreps.cg_paths,
        num_weights=lambda i1, i2, io_: len(
            weight_slots(
                *(
                    _irreps.check_irreps(i, w, NAME)
                    for i, w in ((i1, "x"), (i2, "y"), (io_, "irreps_out"))
                )
            )  # fmt: skip
        ),
        weight_structure="m",
        cost="O(L^3) per edge (rotations O(L^3), per-m mixing O(L^3))",
        exact=True,
        tolerance=1e-10,
        requires_sh_input=True,
        description="SO(2)/eSCN: rotate to the edge frame, mix per |m|, rotate back",
        extra={"normalisation": lambda l1, l2, l3: 1.0, "irrep_normalization": "component"},
    )
)
