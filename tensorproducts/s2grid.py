r"""Exact spherical-harmonic transforms on Gauss-Legendre x uniform grids, done per m in O(L^3).

**Convention (identical to e3nn-jax's ``to_s2grid``/``from_s2grid`` with
``quadrature="gausslegendre"`` and ``normalization="integral"``).** The polar axis is y. Grid
point :math:`(b, a)` is the unit vector
:math:`(\sin\beta_b \sin\alpha_a,\ \cos\beta_b,\ \sin\beta_b\cos\alpha_a)` with
:math:`\cos\beta_b = y_b` the ascending Gauss-Legendre nodes on :math:`[-1, 1]` and
:math:`\alpha_a = 2\pi a / n_\alpha`. Coefficients ``c[..., l**2 + l + m]`` describe

.. math:: f(\hat r) = \sum_{l \le L} \sum_{m=-l}^{l} c_{lm}\, \sqrt{4\pi}\, Y_{lm}(\hat r),
          \qquad c_{lm} = \frac{1}{4\pi}\int_{S^2} f\, \sqrt{4\pi}\,Y_{lm}\, d\Omega,

with e3nn's real spherical harmonics (:math:`\int Y_{lm}^2 d\Omega = 1`,
:math:`Y_{lm} = \bar P_l^{|m|}(\cos\beta)\,\{\sqrt2\sin|m|\alpha,\ 1,\ \sqrt2\cos m\alpha\}` for
:math:`m<0,\ m=0,\ m>0`).

**Algorithm.** Both directions factor through the :math:`2L+1` values of :math:`m`:
a Legendre step (per m a ``(n_beta, L+1)`` matrix: one batched matmul over m, channels and batch
in the matmul's row dimension) and a real DFT along alpha (one ``(2L+1, n_alpha)`` matmul). Cost
per signal :math:`O(n_\beta L^2 + n_\beta L\, n_\alpha) = O(L^3)`, against :math:`O(L^4)` for a
dense ``((L+1)^2, n_beta n_alpha)`` matrix.

**Exactness.** Gauss-Legendre with :math:`n_\beta` nodes integrates polynomials in
:math:`\cos\beta` of degree :math:`\le 2n_\beta - 1`; the uniform alpha rule integrates
:math:`e^{ik\alpha}` exactly for :math:`|k| < n_\alpha`. A band-limited integrand of total degree
:math:`D` is therefore integrated exactly iff :math:`n_\beta \ge \lfloor D/2\rfloor + 1` and
:math:`n_\alpha \ge D + 1` (:func:`exact_resolution`). For a pointwise product of two degree-L
signals projected onto degree 2L, :math:`D = 4L` and the minimal exact grid is
:math:`(2L+1) \times (4L+1)`; with :math:`2L` beta points the result is wrong
(Xie et al., ICML 2025, sec. 4; tested as a negative control). :func:`from_grid` of a signal of
degree :math:`L_f` onto degree :math:`L` is exact when :math:`D = L_f + L` satisfies the rule.

**IrrepsArrays with channels.** :func:`irreps_to_grid` maps an ``IrrepsArray`` with irreps
``C x 0p0 + C x 1p1 + ...`` (any parities) to signals ``[..., C, n_beta, n_alpha]``, one per
parity class ``p_val`` (:math:`p_l = p_{val}(-1)^l`: ``+1`` for ``0e+1o+2e..``, ``-1`` for
``0o+1e+2o..``); :func:`grid_to_irreps` maps such signals back to requested irreps. Under the
inversion :math:`\hat r \to -\hat r` a class-``p_val`` signal picks up :math:`p_{val}`, so
grid-pointwise maps that respect the class are parity-equivariant.

**API.** ``to_grid(c [..., (L+1)^2], res_beta, res_alpha) -> [..., res_beta, res_alpha]`` and
``from_grid(f, lmax)`` on plain arrays (any leading axes: batch, channels); ``to_grid_fm`` /
``from_grid_fm`` are the same transforms in the feature-major layout ``[(L+1)^2, N]`` /
``[res_alpha, res_beta, N]`` that the products use (no transposes inside jit);
``irreps_to_grid`` / ``grid_to_irreps`` for ``IrrepsArray`` with channels and parities;
``exact_resolution(degree)`` for the grid.
"""

from __future__ import annotations

import functools
import math

import e3nn_jax as e3nn
import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "exact_resolution",
    "grid_points",
    "grid_vectors",
    "legendre_table",
    "grid_harmonics",
    "to_grid",
    "from_grid",
    "to_grid_fm",
    "from_grid_fm",
    "irreps_to_grid",
    "grid_to_irreps",
    "parity_classes",
]


def exact_resolution(degree: int) -> tuple[int, int]:
    """Minimal ``(res_beta, res_alpha)`` that integrates a degree-``degree`` integrand exactly.

    ``res_beta = degree // 2 + 1`` Gauss-Legendre points and ``res_alpha = degree + 1`` uniform
    points. For the Gaunt product of degree-L inputs onto degree 2L use ``degree = 4L``:
    ``(2L+1, 4L+1)``.
    """
    if degree < 0:
        raise ValueError(f"degree must be >= 0, got {degree}")
    return degree // 2 + 1, degree + 1


@functools.cache
def grid_points(res_beta: int, res_alpha: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(y, alpha, weights)``: cos(beta) nodes, alpha angles, and weights of the full grid.

    ``weights[b] = w_b / 2 / res_alpha`` so that ``sum_{b,a} weights[b] f(b, a)`` is the mean of
    ``f`` over the sphere (``4 pi`` times it is the integral).
    """
    if res_beta < 1 or res_alpha < 1:
        raise ValueError(f"grid resolution must be positive, got ({res_beta}, {res_alpha})")
    y, w = np.polynomial.legendre.leggauss(res_beta)
    alpha = 2 * np.pi * np.arange(res_alpha) / res_alpha
    return y, alpha, w / 2 / res_alpha


def grid_vectors(res_beta: int, res_alpha: int) -> np.ndarray:
    """Unit vectors of the grid points, shape ``(res_beta, res_alpha, 3)`` (y is the polar axis)."""
    y, alpha, _ = grid_points(res_beta, res_alpha)
    s = np.sqrt(1 - y**2)[:, None]
    yy = np.broadcast_to(y[:, None], (res_beta, res_alpha))
    return np.stack([s * np.sin(alpha), yy, s * np.cos(alpha)], axis=-1)


@functools.cache
def legendre_table(lmax: int, res_beta: int) -> np.ndarray:
    r"""Normalised associated Legendre functions, ``P[m, b, l]`` for ``0 <= m <= l <= lmax``.

    :math:`\bar P_l^m(y_b)` with :math:`2\pi\int_{-1}^1 (\bar P_l^m)^2 dy = 1` and no
    Condon-Shortley phase (e3nn's sign), so that :math:`\sqrt2 \bar P_l^m \cos m\alpha` is an
    orthonormal real spherical harmonic. Entries with ``l < m`` are zero. Computed by the
    standard stable three-term recursion in l at fixed m (e.g. Holmes & Featherstone, J. Geodesy
    76, 279 (2002), eqs. 11-13), in float64.
    """
    y, _, _ = grid_points(res_beta, 1)
    s = np.sqrt(np.clip(1 - y**2, 0.0, None))
    p = np.zeros((lmax + 1, res_beta, lmax + 1))
    pmm = np.full(res_beta, math.sqrt(1 / (4 * np.pi)))  # orthonormal on the sphere, m = 0
    for m in range(lmax + 1):
        if m > 0:
            pmm = pmm * s * math.sqrt((2 * m + 1) / (2 * m))
        p[m, :, m] = pmm
        if m + 1 <= lmax:
            p[m, :, m + 1] = math.sqrt(2 * m + 3) * y * pmm
        for l in range(m + 2, lmax + 1):
            a = math.sqrt((4 * l * l - 1) / (l * l - m * m))
            b = math.sqrt(((l - 1) ** 2 - m * m) / (4 * (l - 1) ** 2 - 1))
            p[m, :, l] = a * (y * p[m, :, l - 1] - b * p[m, :, l - 2])
    # The recursion above is orthonormal for the full sphere with a 1/sqrt(2pi) alpha factor
    # folded in for m = 0; for m > 0 the sqrt(2) cos / sin is applied in the alpha table.
    p.setflags(write=False)
    return p


@functools.cache
def _alpha_table(lmax: int, res_alpha: int) -> np.ndarray:
    """``A[m + lmax, a]`` = sqrt2 sin(|m| alpha) (m<0), 1 (m=0), sqrt2 cos(m alpha) (m>0)."""
    _, alpha, _ = grid_points(1, res_alpha)
    m = np.arange(-lmax, lmax + 1)[:, None]
    out = np.where(m < 0, math.sqrt(2) * np.sin(-m * alpha), math.sqrt(2) * np.cos(m * alpha))
    out[lmax] = 1.0
    out.setflags(write=False)
    return out


@functools.cache
def _layout(lmax: int) -> tuple[np.ndarray, np.ndarray]:
    """Index maps between the flat ``(lmax+1)^2`` layout and the padded ``(2lmax+1, lmax+1)`` one.

    ``to_padded[m + lmax, l]`` is the flat index of ``(l, m)`` or ``(lmax+1)^2`` (a zero pad) when
    ``l < |m|``; ``to_flat[i]`` is the padded (raveled) position of flat index ``i``.
    """
    n = (lmax + 1) ** 2
    to_padded = np.full((2 * lmax + 1, lmax + 1), n, dtype=np.int32)
    to_flat = np.zeros(n, dtype=np.int32)
    for l in range(lmax + 1):
        for m in range(-l, l + 1):
            to_padded[m + lmax, l] = l * l + l + m
            to_flat[l * l + l + m] = (m + lmax) * (lmax + 1) + l
    return to_padded, to_flat


@functools.cache
def _to_grid_tables(lmax: int, res_beta: int, res_alpha: int):
    """``(leg [m, b, l], dft [a, m])`` for :func:`to_grid_fm` (float64 NumPy)."""
    p = legendre_table(lmax, res_beta)  # [|m|, b, l]
    m = np.abs(np.arange(-lmax, lmax + 1))
    leg = np.sqrt(4 * np.pi) * p[m]  # sqrt(4 pi): e3nn "integral" normalisation
    return np.ascontiguousarray(leg), np.ascontiguousarray(_alpha_table(lmax, res_alpha).T)


@functools.cache
def grid_harmonics(lmax: int, res_beta: int, res_alpha: int) -> np.ndarray:
    r"""``Y[l**2 + l + m, b, a]`` = :math:`\sqrt{4\pi}\,Y_{lm}` at the grid points, float64.

    The dense form of :func:`to_grid` (``to_grid(c) = c @ Y``; e3nn's "component" normalisation,
    :math:`\sum_m (\sqrt{4\pi} Y_{lm})^2 = 2l+1`), built from the same per-m tables, and
    :func:`from_grid` is ``f @ (Y * weights[:, None]).T`` with :func:`grid_points`' weights. For
    callers that want one matrix over the grid (small ``lmax``, many channels).
    """
    leg, dft = _to_grid_tables(lmax, res_beta, res_alpha)  # [m, b, l], [a, m]
    to_padded, _ = _layout(lmax)
    n = (lmax + 1) ** 2
    out = np.zeros((n + 1, res_beta, res_alpha))
    for mi in range(2 * lmax + 1):
        for l in range(lmax + 1):
            out[to_padded[mi, l]] = leg[mi, :, l, None] * dft[None, :, mi]
    out = out[:n]
    out.setflags(write=False)
    return out


@functools.cache
def _from_grid_tables(lmax: int, res_beta: int, res_alpha: int):
    """``(leg_w [m, l, b], dft [m, a])`` for :func:`from_grid_fm` (quadrature folded in)."""
    leg, dft = _to_grid_tables(lmax, res_beta, res_alpha)
    _, _, w = grid_points(res_beta, res_alpha)
    # c = (1/4pi) int f sqrt(4pi) Y = sum_{b,a} w_b/(2 n_a) f(b,a) sqrt(4pi) Y(b,a)
    leg_w = (leg * w[None, :, None]).transpose(0, 2, 1)
    return np.ascontiguousarray(leg_w), np.ascontiguousarray(dft.T)


def to_grid_fm(coeffs_t: jax.Array, res_beta: int, res_alpha: int) -> jax.Array:
    """Feature-major :func:`to_grid`: ``[(L+1)^2, N] -> [res_alpha, res_beta, N]``.

    The layout the products use internally: the gather copies whole rows of N values, the
    Legendre step is a batched matmul ``[m, b, l] @ [m, l, N]`` and the alpha step one matmul
    ``[a, m] @ [m, b N]``; no transposes in between.
    """
    lmax = math.isqrt(coeffs_t.shape[0]) - 1
    if (lmax + 1) ** 2 != coeffs_t.shape[0]:
        raise ValueError(f"first axis must have (L+1)^2 entries, got {coeffs_t.shape[0]}")
    leg, dft = _to_grid_tables(lmax, res_beta, res_alpha)
    to_padded, _ = _layout(lmax)
    n, dt = coeffs_t.shape[1], coeffs_t.dtype
    x = jnp.concatenate([coeffs_t, jnp.zeros((1, n), dt)], axis=0)[to_padded]  # [m, l, N]
    sig_b = jnp.matmul(jnp.asarray(leg, dt), x)  # [m, b, N]: per-m Legendre
    sig = jnp.asarray(dft, dt) @ sig_b.reshape(2 * lmax + 1, -1)  # [a, b N]: real DFT
    return sig.reshape(res_alpha, res_beta, n)


def from_grid_fm(signal: jax.Array, lmax: int) -> jax.Array:
    """Feature-major :func:`from_grid`: ``[res_alpha, res_beta, N] -> [(lmax+1)^2, N]``."""
    res_alpha, res_beta, n = signal.shape
    leg_w, dft = _from_grid_tables(lmax, res_beta, res_alpha)
    _, to_flat = _layout(lmax)
    dt = signal.dtype
    fa = jnp.asarray(dft, dt) @ signal.reshape(res_alpha, -1)  # [m, b N]: alpha projection
    c = jnp.matmul(jnp.asarray(leg_w, dt), fa.reshape(2 * lmax + 1, res_beta, n))  # [m, l, N]
    return c.reshape(-1, n)[to_flat]


def to_grid(coeffs: jax.Array, res_beta: int, res_alpha: int) -> jax.Array:
    """Signal ``[..., res_beta, res_alpha]`` from coefficients ``[..., (L+1)^2]`` (L inferred).

    All leading axes (batch, channels) are one matmul dimension. Equal to
    ``e3nn.to_s2grid(IrrepsArray(s2_irreps(L), coeffs), res_beta, res_alpha,
    quadrature="gausslegendre").grid_values``.
    """
    coeffs = jnp.asarray(coeffs)
    lead = coeffs.shape[:-1]
    sig = to_grid_fm(coeffs.reshape(-1, coeffs.shape[-1]).T, res_beta, res_alpha)
    return jnp.transpose(sig, (2, 1, 0)).reshape(lead + (res_beta, res_alpha))


def from_grid(signal: jax.Array, lmax: int) -> jax.Array:
    """Coefficients ``[..., (lmax+1)^2]`` of a signal ``[..., res_beta, res_alpha]``.

    The exact inverse of :func:`to_grid` for band-limited signals on a grid that satisfies
    :func:`exact_resolution` for ``deg(signal) + lmax``. Equal to ``e3nn.from_s2grid``.
    """
    signal = jnp.asarray(signal)
    res_beta, res_alpha = signal.shape[-2:]
    lead = signal.shape[:-2]
    f = jnp.transpose(signal.reshape(-1, res_beta, res_alpha), (2, 1, 0))
    return from_grid_fm(f, lmax).T.reshape(lead + ((lmax + 1) ** 2,))


def parity_classes(irreps: e3nn.Irreps) -> dict[int, list[int]]:
    """Degrees present in each parity class ``p_val`` (``p = p_val (-1)^l``) of ``irreps``."""
    out: dict[int, list[int]] = {}
    for _, ir in e3nn.Irreps(irreps):
        pv = ir.p * (-1) ** ir.l
        out.setdefault(pv, [])
        if ir.l not in out[pv]:
            out[pv].append(ir.l)
    return out


def _channels(irreps: e3nn.Irreps, what: str) -> int:
    muls = {mul for mul, _ in irreps if mul > 0}
    if len(muls) > 1:
        raise ValueError(
            f"{what}: every irrep needs the same multiplicity (channels), got {irreps}"
        )
    seen = set()
    for _, ir in irreps:
        if ir in seen:
            raise ValueError(f"{what}: irrep {ir} appears twice in {irreps}; regroup it first")
        seen.add(ir)
    return muls.pop() if muls else 0


def irreps_to_grid(x: e3nn.IrrepsArray, res_beta: int, res_alpha: int) -> dict[int, jax.Array]:
    """Signals ``{p_val: [..., C, res_beta, res_alpha]}`` of ``x`` (irreps ``C x lp`` each).

    Each parity class becomes one signal of degree ``max l`` in that class (absent degrees are
    zero). Channels ``C`` become an axis before the grid axes.
    """
    c = _channels(x.irreps, "irreps_to_grid")
    out = {}
    lead = x.shape[:-1]
    by_irrep = {ir: ch for (_, ir), ch in zip(x.irreps, x.chunks, strict=True) if ch is not None}
    for pv, ls in parity_classes(x.irreps).items():
        lmax = max(ls)
        blocks = []
        for l in range(lmax + 1):
            ir = e3nn.Irrep(l, pv * (-1) ** l)
            chunk = by_irrep.get(ir)  # [..., C, 2l+1]
            if chunk is None:
                chunk = jnp.zeros(lead + (c, 2 * l + 1), x.dtype)
            blocks.append(chunk)
        out[pv] = to_grid(jnp.concatenate(blocks, axis=-1), res_beta, res_alpha)
    return out


def grid_to_irreps(signals: dict[int, jax.Array], irreps_out: e3nn.Irreps) -> e3nn.IrrepsArray:
    """``IrrepsArray`` with irreps ``irreps_out`` (``C x lp`` each) from class signals.

    ``signals[p_val]`` is ``[..., C, res_beta, res_alpha]``; each output irrep ``lp`` is read
    from the signal of its class ``p_val = p (-1)^l`` (zeros if that class is absent).
    """
    irreps_out = e3nn.Irreps(irreps_out)
    c = _channels(irreps_out, "grid_to_irreps")
    classes = parity_classes(irreps_out)
    any_sig = next(iter(signals.values()))
    lead = any_sig.shape[:-3]
    coeffs = {pv: from_grid(signals[pv], max(ls)) for pv, ls in classes.items() if pv in signals}
    chunks = []
    for _, ir in irreps_out:
        pv = ir.p * (-1) ** ir.l
        if pv in coeffs:
            chunks.append(coeffs[pv][..., ir.l**2 : (ir.l + 1) ** 2])
        else:
            chunks.append(jnp.zeros(lead + (c, ir.dim), any_sig.dtype))
    return e3nn.from_chunks(irreps_out, chunks, lead, any_sig.dtype)
