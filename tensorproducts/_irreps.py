"""Small helpers shared by the variants: input checks, path enumeration, output assembly.

The contract every variant follows (see :mod:`tensorproducts.registry`):

* ``x``, ``y``: ``IrrepsArray`` whose irreps have multiplicity 1 and no repeated irrep
  (``"0e + 1o + 2e"``; channels live on a leading axis, e.g. after ``x.mul_to_axis()``);
  leading shapes broadcast against each other (and against ``weights[..., :-1]``).
* ``irreps_out``: the requested output irreps, multiplicity 1, no repeats, any order; ``None``
  means every irrep the variant can reach (sorted). The output has exactly these irreps: each
  output irrep is the **sum over all paths** ``(l1 p1) x (l2 p2) -> (l3 p3)`` landing on it
  (zero if none).
* Paths are enumerated in one canonical order (:func:`cg_paths`): input-1 irreps in order, then
  input-2, then output. Per-path ``weights[..., k]`` multiply path ``k`` of that list.
"""

from __future__ import annotations

import e3nn_jax as e3nn
import jax.numpy as jnp
import numpy as np

__all__ = [
    "Path",
    "check_irreps",
    "resolve_irreps",
    "cg_paths",
    "cg_num_weights",
    "paths_by_pair",
    "reachable_irreps",
    "broadcast_inputs",
    "check_weights",
    "optional_weights",
    "weight_rows",
    "assemble",
    "SharedLayout",
    "shared_layout",
]

Path = tuple[int, int, int, int, int, int]  # (l1, p1, l2, p2, l3, p3)


def check_irreps(irreps, what: str, variant: str) -> e3nn.Irreps:
    """``irreps`` as ``e3nn.Irreps``, or a ``ValueError`` naming the variant and the argument."""
    irreps = e3nn.Irreps(irreps)
    seen = set()
    for mul, ir in irreps:
        if mul != 1:
            raise ValueError(
                f"{variant}: {what} must have multiplicity 1 per irrep (channels go on a leading "
                f"axis, e.g. x.mul_to_axis()), got {irreps}"
            )
        if ir in seen:
            raise ValueError(f"{variant}: {what} repeats irrep {ir} in {irreps}; regroup it first")
        seen.add(ir)
    return irreps


def resolve_irreps(x, y, irreps_out, variant: str, keep=lambda l1, l2, l3: True):
    """``(irreps1, irreps2, irreps_out)`` of a product, checked (:func:`check_irreps`).

    ``irreps_out=None`` becomes every irrep reachable by the paths ``keep`` (the variant's
    selection rule on ``(l1, l2, l3)``; all CG paths by default).
    """
    ir1 = check_irreps(x.irreps, "x", variant)
    ir2 = check_irreps(y.irreps, "y", variant)
    if irreps_out is None:
        irreps_out = reachable_irreps(ir1, ir2, keep)
    return ir1, ir2, check_irreps(irreps_out, "irreps_out", variant)


def cg_paths(irreps1, irreps2, irreps_out) -> list[Path]:
    """All paths allowed by the triangle rule and parity ``p3 = p1 p2``, in canonical order."""
    out = []
    for _, ir1 in e3nn.Irreps(irreps1):
        for _, ir2 in e3nn.Irreps(irreps2):
            for _, ir3 in e3nn.Irreps(irreps_out):
                if abs(ir1.l - ir2.l) <= ir3.l <= ir1.l + ir2.l and ir3.p == ir1.p * ir2.p:
                    out.append((ir1.l, ir1.p, ir2.l, ir2.p, ir3.l, ir3.p))
    return out


def cg_num_weights(irreps1, irreps2, irreps_out) -> int:
    """Number of per-path weights of a full CG product: one per :func:`cg_paths` entry."""
    return len(cg_paths(irreps1, irreps2, irreps_out))


def paths_by_pair(irreps1, irreps2, irreps_out):
    """``(paths, pairs)``: :func:`cg_paths`, and per pair of input irreps that has a path,
    ``(ir1, slice1, ir2, slice2, ((ir3, k), ...))`` with ``k`` the path's index in ``paths``
    (input-1 irreps in order, then input-2, then the output irreps in order)."""
    ir1s, ir2s, outs = e3nn.Irreps(irreps1), e3nn.Irreps(irreps2), e3nn.Irreps(irreps_out)
    paths = cg_paths(ir1s, ir2s, outs)
    index = {p: k for k, p in enumerate(paths)}
    pairs = []
    for (_, ir1), s1 in zip(ir1s, ir1s.slices(), strict=True):
        for (_, ir2), s2 in zip(ir2s, ir2s.slices(), strict=True):
            keys = [(ir3, (ir1.l, ir1.p, ir2.l, ir2.p, ir3.l, ir3.p)) for _, ir3 in outs]
            targets = tuple((ir3, index[key]) for ir3, key in keys if key in index)
            if targets:
                pairs.append((ir1, s1, ir2, s2, targets))
    return paths, pairs


def reachable_irreps(irreps1, irreps2, keep=lambda l1, l2, l3: True) -> e3nn.Irreps:
    """Sorted irreps (multiplicity 1) reachable from ``irreps1 x irreps2`` by paths ``keep``."""
    irs = set()
    for _, ir1 in e3nn.Irreps(irreps1):
        for _, ir2 in e3nn.Irreps(irreps2):
            for l3 in range(abs(ir1.l - ir2.l), ir1.l + ir2.l + 1):
                if keep(ir1.l, ir2.l, l3):
                    irs.add(e3nn.Irrep(l3, ir1.p * ir2.p))
    return e3nn.Irreps([(1, ir) for ir in sorted(irs)])


def broadcast_inputs(x: e3nn.IrrepsArray, y: e3nn.IrrepsArray, *extra_lead):
    """``(x2d, y2d, lead, dtype)``: arrays flattened to ``[N, dim]`` over the broadcast shape.

    ``extra_lead`` are further leading shapes (e.g. of ``weights``) that join the broadcast.
    """
    lead = np.broadcast_shapes(x.shape[:-1], y.shape[:-1], *extra_lead)
    dtype = jnp.result_type(x.dtype, y.dtype)
    xa = jnp.broadcast_to(x.array.astype(dtype), lead + x.shape[-1:]).reshape(-1, x.shape[-1])
    ya = jnp.broadcast_to(y.array.astype(dtype), lead + y.shape[-1:]).reshape(-1, y.shape[-1])
    return xa, ya, tuple(lead), dtype


class SharedLayout:
    """Rows of a product whose second input is shared along some broadcast axes.

    With ``lead`` the broadcast leading shape, the *shared* axes are those where ``y`` has size 1
    but ``lead`` does not (e.g. the spherical harmonics of an edge, shared by its channels). The
    leading axes are permuted to ``(other axes, shared axes)`` and flattened to ``[M, R]``: ``M``
    rows carry their own ``y``, each repeated over ``R`` rows of ``x``. A product can then
    contract ``y`` once per ``M`` row instead of once per ``M R`` row, and nothing of ``y`` is
    materialised ``R`` times. ``R == 1`` when nothing is shared.
    """

    def __init__(self, lead: tuple, y_lead: tuple):
        nd = len(lead)
        ys = (1,) * (nd - len(y_lead)) + tuple(y_lead)
        shared = [i for i in range(nd) if ys[i] == 1 and lead[i] > 1]
        own = [i for i in range(nd) if i not in shared]
        self.lead = tuple(lead)
        self.perm = tuple(own + shared)
        self.inverse = tuple(int(i) for i in np.argsort(self.perm))
        self.m = int(np.prod([lead[i] for i in own], dtype=np.int64))
        self.r = int(np.prod([lead[i] for i in shared], dtype=np.int64))
        self.y_shape = tuple(1 if i in shared else lead[i] for i in range(nd))
        self.permuted = tuple(lead[i] for i in self.perm)

    def rows(self, a: jnp.ndarray) -> jnp.ndarray:
        """``a[lead..., d]`` (broadcastable) -> ``[M, R, d]``."""
        a = jnp.broadcast_to(a, self.lead + a.shape[-1:])
        nd = len(self.lead)
        return a.transpose(self.perm + (nd,)).reshape(self.m, self.r, a.shape[-1])

    def y_rows(self, y: jnp.ndarray) -> jnp.ndarray:
        """``y[y_lead..., d]`` -> ``[M, d]`` (never repeated over the shared axes)."""
        y = jnp.broadcast_to(y, self.y_shape + y.shape[-1:])
        nd = len(self.lead)
        return y.transpose(self.perm + (nd,)).reshape(self.m, y.shape[-1])

    def unrows(self, z: jnp.ndarray) -> jnp.ndarray:
        """``z[M, R, d]`` -> ``[lead..., d]`` (inverse of :meth:`rows`)."""
        nd = len(self.lead)
        z = z.reshape(self.permuted + z.shape[-1:])
        return z.transpose(self.inverse + (nd,))


def shared_layout(x: e3nn.IrrepsArray, y: e3nn.IrrepsArray, *extra_lead) -> SharedLayout:
    """:class:`SharedLayout` of ``x``, ``y`` (and further leading shapes, e.g. of weights)."""
    lead = np.broadcast_shapes(x.shape[:-1], y.shape[:-1], *extra_lead)
    return SharedLayout(tuple(lead), y.shape[:-1])


def check_weights(weights, num: int, variant: str):
    """``weights`` as an array whose last axis has ``num`` entries (clear error otherwise)."""
    weights = jnp.asarray(weights)
    if weights.ndim == 0 or weights.shape[-1] != num:
        raise ValueError(
            f"{variant}: weights must have shape batch + ({num},) (one per path in "
            f"tensorproducts._irreps.cg_paths order), got {weights.shape}"
        )
    return weights


def optional_weights(weights, num: int, variant: str):
    """``(weights, extra_lead)`` for :func:`broadcast_inputs`: ``(None, ())`` without weights,
    else the checked weights (:func:`check_weights`) and their leading shape."""
    if weights is None:
        return None, ()
    weights = check_weights(weights, num, variant)
    return weights, (weights.shape[:-1],)


def weight_rows(weights, lead: tuple, dtype):
    """``weights[..., k]`` broadcast to ``lead`` and flattened to ``[N, k]`` like the inputs of
    :func:`broadcast_inputs` (``None`` stays ``None``)."""
    if weights is None:
        return None
    k = weights.shape[-1]
    return jnp.broadcast_to(weights.astype(dtype), tuple(lead) + (k,)).reshape(-1, k)


def assemble(irreps_out: e3nn.Irreps, blocks: dict, lead: tuple, dtype) -> e3nn.IrrepsArray:
    """``IrrepsArray`` of ``irreps_out`` from ``{ir: [N, 2l+1]}`` (missing irreps are zero)."""
    n = int(np.prod(lead)) if lead else 1
    parts = []
    for _, ir in irreps_out:
        blk = blocks.get(ir)
        parts.append(jnp.zeros((n, ir.dim), dtype) if blk is None else blk.astype(dtype))
    arr = jnp.concatenate(parts, axis=-1) if parts else jnp.zeros((n, 0), dtype)
    return e3nn.IrrepsArray(irreps_out, arr.reshape(lead + (irreps_out.dim,)))
