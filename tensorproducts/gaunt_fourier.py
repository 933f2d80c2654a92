r"""``gaunt-fourier``: the Gaunt product through the 2D Fourier basis, with exact tables.

Luo, Chen, He, Wang, "Enabling efficient equivariant operations in the Fourier basis via Gaunt
tensor products", ICLR 2024 (arXiv 2401.10216). The Gaunt product of two band-limited signals on
the sphere is their pointwise product. With :math:`\beta \in [0, \pi]` the polar angle from the
y axis and :math:`\alpha` the azimuth (e3nn's angles), every real spherical harmonic of degree
:math:`l` is a homogeneous polynomial of degree :math:`l` in
:math:`(\sin\beta\sin\alpha, \cos\beta, \sin\beta\cos\alpha)`, hence a 2D trigonometric
polynomial

.. math:: Y_{lm}(\beta, \alpha) = \sum_{|u| \le l} \sum_{|v| \le l}
          C^{lm}_{uv}\, e^{i u \beta} e^{i v \alpha},
          \qquad C^{lm}_{uv} = 0 \text{ unless } |v| = |m|.

Steps for :math:`x_1` (degrees :math:`\le L_1`) and :math:`x_2` (:math:`\le L_2`):

1. SH -> Fourier: :math:`F^{(k)}_{uv} = \sum_{lm} x^{(k)}_{lm} C^{lm}_{uv}`, done per
   :math:`v` (only :math:`m = \pm v` contribute), :math:`O(L^3)`.
2. 2D convolution :math:`G = F^{(1)} * F^{(2)}` (the Fourier series of :math:`f_1 f_2`), by FFT
   (zero padding to :math:`2(L_1+L_2)+1`, :math:`O(L^2 \log L)`) or directly
   (Toeplitz matrix product along :math:`v`, skewed sum along :math:`u`, :math:`O(L^4)`).
3. Fourier -> SH by exact integration on the sphere,

   .. math:: x^{(3)}_{lm} = \frac{\kappa}{4\pi}\int_0^\pi\!\!\int_0^{2\pi}
             f_1 f_2\, Y_{lm} \sin\beta\, d\alpha\, d\beta
             = \kappa \sum_{uv} G_{uv} Z^{lm}_{uv},\quad
             Z^{lm}_{uv} = \tfrac12 \sum_{u'} C^{lm}_{u',-v}\, I(u + u'),

   with :math:`I(n) = \int_0^\pi e^{in\beta}\sin\beta\, d\beta` in closed form.

The tables :math:`C` are the exact discrete Fourier transform of :math:`Y_{lm}` sampled on a
:math:`(2l+1)^2` torus grid (a trigonometric polynomial of degree :math:`l` is recovered exactly by
that many uniform samples), evaluated in NumPy float64: no numerical integration, so the product
is equivariant to round-off (the research code integrates on a 300 x 300 grid and is equivariant
only to about 2e-2).

**Normalisation.** Spherical harmonics with e3nn's ``"component"`` normalisation (mean square 1
over the sphere) for inputs and outputs and :math:`\kappa = 1`: path :math:`(l_1, l_2, l_3)` equals
:math:`\sqrt{(2l_1+1)(2l_2+1)(2l_3+1)}\,|(l_1 l_2 l_3; 0 0 0)|` times the e3nn CG path, i.e.
:math:`\sqrt{4\pi}` times :func:`tensorproducts.clebsch_gordan.real_gaunt` applied to the
inputs. Only paths with :math:`l_1 + l_2 + l_3` even are non-zero.

**Parity.** Each input is split into its parity classes (see :mod:`tensorproducts._irreps_io`);
the class-:math:`s_1` part of :math:`x_1` times the class-:math:`s_2` part of :math:`x_2` is a
class-:math:`s_1 s_2` signal, so ``1e x 1e -> 0e + 2e`` and ``0o x 1o -> 1e`` come out with the
right parity (the research code assumes both inputs are ordinary functions).
"""

from __future__ import annotations

import functools
import math

import e3nn_jax as e3nn
import jax.numpy as jnp
import numpy as np

from . import _irreps
from . import _irreps_io as io
from .clebsch_gordan import wigner_3j_000
from .registry import TensorProductSpec, register

__all__ = [
    "gaunt_fourier",
    "sh_fourier_table",
    "projection_table",
    "convolve_fft",
    "convolve_direct",
    "gaunt_paths",
]

KAPPA = 1.0  # overall scale; see "Normalisation" in the module docstring


@functools.cache
def sh_fourier_table(lmax: int, n: int | None = None) -> np.ndarray:
    r"""Exact :math:`C^{lm}_{uv}`, complex ``((lmax+1)^2, 2lmax+1, 2lmax+1)``, index ``u+lmax``.

    DFT of :math:`Y_{lm}(\beta, \alpha)` on the uniform :math:`N \times N` torus grid with
    :math:`N = 2 l_{max} + 1`: exact for trigonometric polynomials of degree :math:`\le l_{max}`.
    A smaller ``n`` aliases (kept as a parameter for the negative control in the tests).
    """
    n = 2 * lmax + 1 if n is None else n
    t = 2 * np.pi * np.arange(n) / n
    beta, alpha = np.meshgrid(t, t, indexing="ij")
    xyz = np.stack(
        [np.sin(beta) * np.sin(alpha), np.cos(beta), np.sin(beta) * np.cos(alpha)], axis=-1
    )
    # Points with beta > pi are valid unit vectors; Y there is the polynomial's value, which is
    # exactly the trigonometric-polynomial extension we want.
    y = io.real_sh(lmax, xyz)  # (n, n, D)
    coef = np.fft.fft2(np.moveaxis(y, -1, 0), axes=(-2, -1)) / (n * n)  # index (u mod n, v mod n)
    # reorder frequencies to u = -lmax..lmax (index u + lmax), wrapping as the DFT does
    freqs = np.arange(-lmax, lmax + 1) % n
    coef = coef[:, freqs][:, :, freqs]
    coef[np.abs(coef) < 1e-15] = 0.0
    coef.setflags(write=False)
    return coef


def _int_sin(n: np.ndarray) -> np.ndarray:
    r""":math:`I(n) = \int_0^\pi e^{in\beta}\sin\beta\,d\beta` for integer arrays ``n``."""

    def j(k):
        k = np.asarray(k)
        safe = np.where(k == 0, 1, k)
        return np.where(k == 0, np.pi + 0j, ((-1.0) ** np.abs(k) - 1.0) / (1j * safe))

    return (j(n + 1) - j(n - 1)) / 2j


@functools.cache
def projection_table(lmax_out: int, lmax_in: int) -> np.ndarray:
    r"""Exact :math:`Z^{lm}_{uv}` ``((lmax_out+1)^2, 2lmax_in+1, 2lmax_in+1)``, index ``u+lmax_in``.

    Projects a 2D Fourier series with :math:`|u|, |v| \le` ``lmax_in`` onto
    :math:`\frac{1}{4\pi}\int \cdot\, Y_{lm}\, d\Omega` for :math:`l \le` ``lmax_out``.
    """
    c = sh_fourier_table(lmax_out)  # (D, 2Lo+1, 2Lo+1) over (u', v')
    lo, li = lmax_out, lmax_in
    u = np.arange(-li, li + 1)
    up = np.arange(-lo, lo + 1)
    imat = _int_sin(u[:, None] + up[None, :])  # (u, u')
    z = np.zeros(((lo + 1) ** 2, 2 * li + 1, 2 * li + 1), dtype=np.complex128)
    for v in range(-min(lo, li), min(lo, li) + 1):
        # Z[lm, u, v] = 1/2 sum_u' C[lm, u', -v] I(u + u')
        z[:, :, v + li] = 0.5 * np.einsum("dp,up->du", c[:, :, -v + lo], imat)
    z[np.abs(z) < 1e-15] = 0.0
    z.setflags(write=False)
    return z


@functools.cache
def _forward_plan(lmax: int):
    r"""Per-v plan for SH -> Fourier on the half plane ``v >= 0`` (a real signal has
    :math:`F_{-u,-v} = \overline{F_{uv}}`): ``idx (V, K)`` into the dense coefficients
    (``(lmax+1)^2`` is the zero slot) and the table ``[Re A | Im A]`` of shape ``(V, K, 2U)``."""
    c = sh_fourier_table(lmax)
    nu = 2 * lmax + 1
    kmax = max(lmax + 1, 2 * lmax)
    idx = np.full((lmax + 1, kmax), (lmax + 1) ** 2, dtype=np.int32)
    a = np.zeros((lmax + 1, kmax, nu), dtype=np.complex128)
    for v in range(lmax + 1):
        k = 0
        for l in range(v, lmax + 1):
            for m in sorted({v, -v}):
                lm = l * l + l + m
                idx[v, k] = lm
                a[v, k] = c[lm, :, v + lmax]
                k += 1
    # The sparsity |v| = |m| is a property of e3nn's basis (y polar axis); verify it once.
    leak = c.copy()
    for l in range(lmax + 1):
        for m in range(-l, l + 1):
            leak[l * l + l + m, :, [lmax + m, lmax - m]] = 0
    if np.abs(leak).max() > 1e-12:
        raise AssertionError("SH Fourier table is not sparse in |v| = |m|: basis convention?")
    return idx, np.concatenate([a.real, a.imag], axis=-1)


@functools.cache
def _backward_plan(lmax_out: int, lmax_in: int):
    r"""Plan for Fourier -> SH from the half plane: with :math:`Z_{-u,-v} = \overline{Z_{uv}}`,
    :math:`x_{lm} = \mathrm{Re}\sum_u [G_{u0} Z_{u0} + 2\sum_{v>0} G_{uv} Z_{uv}]`. Returns the
    table ``[Re B ; -Im B]`` ``(V, 2U, K)`` (factor 2 folded in) and one position per output
    ``lm`` into the flattened ``(V, K)`` result."""
    z = projection_table(lmax_out, lmax_in)
    lo = min(lmax_out, lmax_in)
    kmax = max(lmax_out + 1, 2 * lmax_out)
    b = np.zeros((lo + 1, 2 * lmax_in + 1, kmax), dtype=np.complex128)
    pos = np.full((lmax_out + 1) ** 2, (lo + 1) * kmax, dtype=np.int32)  # default: zero slot
    for v in range(lo + 1):
        k = 0
        for l in range(v, lmax_out + 1):
            for m in sorted({v, -v}):
                lm = l * l + l + m
                b[v, :, k] = (1.0 if v == 0 else 2.0) * z[lm, :, v + lmax_in]
                pos[lm] = v * kmax + k
                k += 1
    return np.concatenate([b.real, -b.imag], axis=1), pos


def _to_fourier(dense: jnp.ndarray, lmax: int) -> jnp.ndarray:
    """Dense SH coefficients ``(..., (lmax+1)^2)`` -> complex half plane ``(..., 2lmax+1, lmax+1)``
    (``u`` centred, ``v = 0..lmax``)."""
    idx, a = _forward_plan(lmax)
    ext = jnp.concatenate([dense, jnp.zeros(dense.shape[:-1] + (1,), dense.dtype)], axis=-1)
    xg = ext[..., idx]  # (..., V, K)
    ri = jnp.einsum("...vk,vku->...uv", xg, jnp.asarray(a, dense.dtype))
    nu = 2 * lmax + 1
    return ri[..., :nu, :] + 1j * ri[..., nu:, :]


def _full_plane(fh: jnp.ndarray) -> jnp.ndarray:
    """Half plane ``(..., U, L+1)`` -> full ``(..., U, 2L+1)`` by Hermitian symmetry."""
    neg = jnp.conj(fh[..., ::-1, 1:])[..., :, ::-1]
    return jnp.concatenate([neg, fh], axis=-1)


def _from_fourier(gh: jnp.ndarray, lmax_out: int, lmax_in: int, dtype) -> jnp.ndarray:
    """Half plane ``(..., 2lmax_in+1, lmax_in+1)`` -> real ``(..., (lmax_out+1)^2)``."""
    b, pos = _backward_plan(lmax_out, lmax_in)
    lo = min(lmax_out, lmax_in)
    g = gh[..., : lo + 1]  # only v <= lmax_out meets the table
    g = jnp.concatenate([g.real, g.imag], axis=-2).astype(dtype)  # (..., 2U, V)
    out = jnp.einsum("...uv,vuk->...vk", g, jnp.asarray(b, dtype))
    flat = out.reshape(out.shape[:-2] + (-1,))
    flat = jnp.concatenate([flat, jnp.zeros(flat.shape[:-1] + (1,), flat.dtype)], axis=-1)
    return flat[..., pos]


def _fft_size(n: int) -> int:
    """Smallest 2^a 3^b 5^c >= n (sizes the FFT libraries handle fastest)."""
    m = n
    while True:
        k = m
        for p in (2, 3, 5):
            while k % p == 0:
                k //= p
        if k == 1:
            return m
        m += 1


def convolve_fft(f1: jnp.ndarray, f2: jnp.ndarray) -> jnp.ndarray:
    r"""Linear convolution of two half-plane series, by real FFTs.

    ``f1`` ``(..., 2L_1+1, L_1+1)``, ``f2`` likewise; returns the half plane
    ``(..., 2(L_1+L_2)+1, L_1+L_2+1)``. The inverse real FFT of a half plane gives the signal's
    samples on an :math:`n \times n` torus grid (:math:`n \ge 2(L_1+L_2)+1`, so nothing aliases),
    their product's forward real FFT is the convolution.
    """
    l1, l2 = f1.shape[-1] - 1, f2.shape[-1] - 1
    lin = l1 + l2
    n = _fft_size(2 * lin + 1)

    def place(fh, lmax):
        rows = np.arange(-lmax, lmax + 1) % n
        pad = jnp.zeros(fh.shape[:-2] + (n, n // 2 + 1), fh.dtype)
        return pad.at[..., rows, : lmax + 1].set(fh)

    s1 = jnp.fft.irfft2(place(f1, l1), s=(n, n))
    s2 = jnp.fft.irfft2(place(f2, l2), s=(n, n))
    g = jnp.fft.rfft2(s1 * s2) * (n * n)
    return g[..., np.arange(-lin, lin + 1) % n, : lin + 1]


@functools.cache
def _direct_plan(n1: int, n2: int):
    n = n1 + n2 - 1
    half = np.arange((n - 1) // 2, n)  # output columns v >= 0 only
    b = half[:, None] - np.arange(n2)[None, :]  # (n_half, n2): index b - w into f1's axis
    valid_v = (b >= 0) & (b < n1)
    k = np.arange(n)[None, :] - np.arange(n1)[:, None]  # (n1, n): index a - i into h's k axis
    valid_u = (k >= 0) & (k < n2)
    return np.clip(b, 0, n1 - 1), valid_v, np.clip(k, 0, n2 - 1), valid_u


def convolve_direct(f1: jnp.ndarray, f2: jnp.ndarray) -> jnp.ndarray:
    r"""Linear convolution of two half-plane series without FFT (same shapes as
    :func:`convolve_fft`).

    Along :math:`v` a Toeplitz matrix product (output :math:`v \ge 0` only),
    :math:`H_{i k b} = \sum_w F^{(1)}_{i, b-w} F^{(2)}_{k w}`, then along :math:`u` the skewed sum
    :math:`G_{ab} = \sum_i H_{i, a-i, b}`: :math:`O(L^4)` multiply-adds per sample.
    """
    f1, f2 = _full_plane(f1), _full_plane(f2)
    n1, n2 = f1.shape[-1], f2.shape[-1]
    bidx, vmask, kidx, umask = _direct_plan(n1, n2)
    t = f1[..., :, bidx] * jnp.asarray(vmask, f1.real.dtype)  # (..., i, b, w)
    lead = np.broadcast_shapes(f1.shape[:-2], f2.shape[:-2])
    t = jnp.broadcast_to(t, lead + t.shape[-3:])
    f2 = jnp.broadcast_to(f2, lead + f2.shape[-2:])
    h = jnp.einsum("...ibw,...kw->...ikb", t, f2)  # (..., i, k, b)
    i = np.arange(n1)[:, None]
    hs = h[..., i, kidx, :] * jnp.asarray(umask, f1.real.dtype)[..., None]  # (..., i, a, b)
    return hs.sum(axis=-3)


_CONVOLUTIONS = {"fft": convolve_fft, "direct": convolve_direct}


def gaunt_normalisation(l1: int, l2: int, l3: int) -> float:
    r"""Path factor relative to ``cg-dense``.

    :math:`\sqrt{(2l_1+1)(2l_2+1)}\,|(l_1 l_2 l_3;000)|` (zero for odd :math:`l_1+l_2+l_3`)."""
    return math.sqrt((2 * l1 + 1) * (2 * l2 + 1)) * abs(wigner_3j_000(l1, l2, l3))


def gaunt_paths(irreps1: e3nn.Irreps, irreps2: e3nn.Irreps, irreps_out: e3nn.Irreps) -> list:
    """Paths ``(l1, p1, l2, p2, l3, p3)`` with ``l1 + l2 + l3`` even and ``p3 = p1 p2``."""
    wanted = {ir for _, ir in e3nn.Irreps(irreps_out)}
    out = []
    for _, a in e3nn.Irreps(irreps1):
        for _, b in e3nn.Irreps(irreps2):
            for c in a * b:
                if (a.l + b.l + c.l) % 2 == 0 and c in wanted:
                    out.append((a.l, a.p, b.l, b.p, c.l, c.p))
    return out


def gaunt_fourier(
    x: e3nn.IrrepsArray,
    y: e3nn.IrrepsArray,
    irreps_out=None,
    weights=None,
    *,
    convolution: str = "fft",
) -> e3nn.IrrepsArray:
    """Gaunt product of ``x`` and ``y`` via exact 2D Fourier tables (see module docstring).

    Args:
        x, y: multiplicity-1 irreps, any leading shapes that broadcast.
        irreps_out: requested output irreps (each present in the result; unreachable ones are 0).
        weights: must be ``None`` (the Gaunt product has no internal weights).
        convolution: ``"fft"`` (default) or ``"direct"``.
    """
    if weights is not None:
        raise ValueError("gaunt-fourier has no internal weights; pass weights=None")
    try:
        conv = _CONVOLUTIONS[convolution]
    except KeyError:
        raise ValueError(
            f"gaunt-fourier: unknown convolution {convolution!r}; use {sorted(_CONVOLUTIONS)}"
        ) from None
    io.check_mul1(x.irreps, "first input", "gaunt-fourier")
    io.check_mul1(y.irreps, "second input", "gaunt-fourier")
    if irreps_out is None:
        irreps_out = _irreps.reachable_irreps(
            x.irreps, y.irreps, keep=lambda l1, l2, l3: (l1 + l2 + l3) % 2 == 0
        )
    irreps_out = _irreps.check_irreps(irreps_out, "irreps_out", "gaunt-fourier")
    lead = io.broadcast_leading(x, y)
    dtype = jnp.result_type(x.dtype, y.dtype)
    x, y = x.astype(dtype), y.astype(dtype)
    l1 = max((ir.l for _, ir in x.irreps), default=0)
    l2 = max((ir.l for _, ir in y.irreps), default=0)
    lmax_in = l1 + l2
    lmax_out = min(max((ir.l for _, ir in irreps_out), default=0), lmax_in)

    f1 = {s: _to_fourier(io.gather_dense(x, s, l1), l1) for s in io.class_degrees(x.irreps)}
    f2 = {s: _to_fourier(io.gather_dense(y, s, l2), l2) for s in io.class_degrees(y.irreps)}
    series: dict[int, jnp.ndarray] = {}
    for s1, a in f1.items():
        for s2, b in f2.items():
            g = conv(a, b)
            series[s1 * s2] = series[s1 * s2] + g if s1 * s2 in series else g
    dense = {s: KAPPA * _from_fourier(g, lmax_out, lmax_in, dtype) for s, g in series.items()}
    return io.assemble_output(irreps_out, dense, lead, dtype)


SPEC = register(
    TensorProductSpec(
        name="gaunt-fourier",
        apply=gaunt_fourier,
        paths=gaunt_paths,
        num_weights=lambda irreps1, irreps2, irreps_out: 0,
        weight_structure="none",
        cost="O(L^3) transforms + O(L^2 log L) FFT convolution (direct: O(L^4))",
        exact=True,
        tolerance=1e-10,
        description="Gaunt product via exact 2D Fourier tables, FFT convolution (Luo et al. 2024)",
        extra={
            "options": {"convolution": ("fft", "direct")},
            "normalisation": gaunt_normalisation,
            "irrep_normalization": "component",
        },
    )
)
