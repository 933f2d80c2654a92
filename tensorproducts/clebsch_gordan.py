r"""Clebsch-Gordan, Wigner 3j and real Gaunt coefficients in e3nn-jax's real basis.

Everything here is NumPy, exact-then-rounded, and cached: it is computed once when a product is
built, never inside a traced function.

**Complex coefficients.** :func:`su2_clebsch_gordan` evaluates the standard (Condon-Shortley)
coefficients :math:`\langle l_1 m_1\, l_2 m_2 | l_3 m_3\rangle` with Racah's closed formula
(Racah, Phys. Rev. 62, 438 (1942), eq. 16'; Varshalovich et al., *Quantum Theory of Angular
Momentum*, sec. 8.2.1, eq. (3)):

.. math::

    \langle l_1 m_1 l_2 m_2|l_3 m_3\rangle = \delta_{m_3, m_1+m_2}
    \sqrt{(2l_3+1)\,\Delta\,\prod_i (l_i+m_i)!(l_i-m_i)!}
    \sum_k \frac{(-1)^k}{k!\,(a-k)!\,(b-k)!\,(c-k)!\,(d+k)!\,(e+k)!}

with :math:`a = l_1+l_2-l_3`, :math:`b = l_1-m_1`, :math:`c = l_2+m_2`,
:math:`d = l_3-l_2+m_1`, :math:`e = l_3-l_1-m_2` and the triangle coefficient
:math:`\Delta = (l_1+l_2-l_3)!(l_1-l_2+l_3)!(-l_1+l_2+l_3)!/(l_1+l_2+l_3+1)!`. The six
factorial arguments in each term sum to :math:`T = a+b+c+d+e`, so :math:`T!` times each term is an
integer (a multinomial coefficient): the alternating sum is done in exact Python integers and only
the final square root is rounded. This is what keeps it stable for large degrees (the alternating
sum cancels catastrophically in floating point for :math:`l \gtrsim 15`), and it costs
:math:`O(l^3)` integer operations per triple: (20, 20, 40) takes milliseconds.

**e3nn's real basis.** e3nn-jax orders the real components of degree :math:`l` as
:math:`m = -l, \dots, l` and relates them to the complex ones by the unitary :math:`Q_l` of
:func:`real_to_complex` (the usual real-form relations, times :math:`(-i)^l` so that all coupling
coefficients come out real). Its coefficient tensor is

.. math::

    C^{l_1 l_2 l_3}_{j k n} = \frac{1}{\sqrt{2l_3+1}} \sum_{m_1 m_2 m_3}
    (Q_{l_1})_{m_1 j} (Q_{l_2})_{m_2 k} \overline{(Q_{l_3})_{m_3 n}}
    \langle l_1 m_1 l_2 m_2|l_3 m_3\rangle,

normalised so that :math:`\sum_{jkn} (C_{jkn})^2 = 1`. :func:`clebsch_gordan` returns exactly
this and agrees with ``e3nn.clebsch_gordan`` (tested for all :math:`l_i \le 4`); y is the polar axis
of the real basis, as in e3nn.
"""

from __future__ import annotations

import functools
import math

import numpy as np

__all__ = [
    "su2_clebsch_gordan",
    "real_to_complex",
    "clebsch_gordan",
    "wigner_3j",
    "wigner_3j_000",
    "real_gaunt",
    "gaunt_path_factor",
    "triangle",
]


def triangle(l1: int, l2: int, l3: int) -> bool:
    """Whether ``(l1, l2, l3)`` satisfy the triangle rule ``|l1 - l2| <= l3 <= l1 + l2``."""
    return abs(l1 - l2) <= l3 <= l1 + l2


@functools.cache
def _factorials(n: int) -> tuple[int, ...]:
    out = [1]
    for k in range(1, n + 1):
        out.append(out[-1] * k)
    return tuple(out)


def _check_degrees(*ls: int) -> None:
    for l in ls:
        if int(l) != l or l < 0:
            raise ValueError(f"degrees must be non-negative integers, got {ls}")


def _cg_exact(l1: int, m1: int, l2: int, m2: int, l3: int, f: tuple[int, ...]) -> float:
    """One complex coefficient <l1 m1 l2 m2 | l3 m1+m2> by Racah's formula in integers."""
    m3 = m1 + m2
    a, b, c = l1 + l2 - l3, l1 - m1, l2 + m2
    d, e = l3 - l2 + m1, l3 - l1 - m2
    kmin, kmax = max(0, -d, -e), min(a, b, c)
    if kmin > kmax:
        return 0.0
    t = a + b + c + d + e
    s = 0
    for k in range(kmin, kmax + 1):
        term = f[t] // (f[k] * f[a - k] * f[b - k] * f[c - k] * f[d + k] * f[e + k])
        s += -term if k % 2 else term
    if s == 0:
        return 0.0
    num = (
        (2 * l3 + 1)
        * f[l1 + l2 - l3]
        * f[l1 - l2 + l3]
        * f[-l1 + l2 + l3]
        * f[l1 + m1]
        * f[l1 - m1]
        * f[l2 + m2]
        * f[l2 - m2]
        * f[l3 + m3]
        * f[l3 - m3]
        * s
        * s
    )
    den = f[l1 + l2 + l3 + 1] * f[t] * f[t]
    # int / int is correctly rounded in Python even when both exceed the float range.
    return math.copysign(math.sqrt(num / den), s)


@functools.cache
def _su2_cg(l1: int, l2: int, l3: int) -> np.ndarray:
    out = np.zeros((2 * l1 + 1, 2 * l2 + 1, 2 * l3 + 1))
    if not triangle(l1, l2, l3):
        return out
    f = _factorials(2 * (l1 + l2 + l3) + 2)
    sym = (-1) ** (l1 + l2 - l3)  # <l1 -m1 l2 -m2|l3 -m3> = (-1)^(l1+l2-l3) <l1 m1 l2 m2|l3 m3>
    for m1 in range(-l1, l1 + 1):
        for m2 in range(max(-l2, -l3 - m1), min(l2, l3 - m1) + 1):
            m3 = m1 + m2
            if (m3, m1) < (0, 0):
                continue  # filled from the mirrored (m -> -m) entry
            v = _cg_exact(l1, m1, l2, m2, l3, f)
            out[l1 + m1, l2 + m2, l3 + m3] = v
            out[l1 - m1, l2 - m2, l3 - m3] = sym * v
    out.setflags(write=False)
    return out


def su2_clebsch_gordan(l1: int, l2: int, l3: int) -> np.ndarray:
    r"""Complex-basis coefficients :math:`\langle l_1 m_1 l_2 m_2|l_3 m_3\rangle`.

    Returns a read-only ``(2l1+1, 2l2+1, 2l3+1)`` array indexed by ``m + l`` (Condon-Shortley
    phase; zero outside the triangle rule). For each ``m3`` the matrix over ``(m1, m2)`` is a
    column of a unitary change of basis, so ``sum_{m1 m2} C^2 = 1`` for every ``m3``.
    """
    _check_degrees(l1, l2, l3)
    return _su2_cg(int(l1), int(l2), int(l3))


@functools.cache
def real_to_complex(l: int) -> np.ndarray:
    r"""Unitary :math:`Q_l` with complex components :math:`= Q_l\,\cdot` real components.

    Rows are complex :math:`m`, columns real :math:`m` (both ordered :math:`-l..l`). For
    :math:`m > 0`: :math:`Y^{\mathbb C}_{m} = (-1)^m (Y_{|m|} + i Y_{-|m|})/\sqrt 2`,
    :math:`Y^{\mathbb C}_{-m} = (Y_{|m|} - i Y_{-|m|})/\sqrt 2`, :math:`Y^{\mathbb C}_0 = Y_0`;
    the whole matrix is multiplied by :math:`(-i)^l`, which makes the real-basis coupling
    coefficients real (e3nn convention).
    """
    q = np.zeros((2 * l + 1, 2 * l + 1), dtype=np.complex128)
    r = 1 / math.sqrt(2)
    q[l, l] = 1.0
    for m in range(1, l + 1):
        q[l - m, l + m] = r
        q[l - m, l - m] = -1j * r
        q[l + m, l + m] = (-1) ** m * r
        q[l + m, l - m] = 1j * (-1) ** m * r
    q = q * (-1j) ** l
    q.setflags(write=False)
    return q


@functools.cache
def _basis_pairs(l: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sparse form of ``Q_l``: real column ``j`` = ``wa[j] * row ia[j] + wb[j] * row ib[j]``."""
    q = real_to_complex(l)
    m = np.arange(-l, l + 1)
    ia, ib = l + np.abs(m), l - np.abs(m)
    cols = np.arange(2 * l + 1)
    wa = q[ia, cols].copy()
    wb = np.where(m == 0, 0.0, q[ib, cols])
    return ia, ib, wa, wb


@functools.cache
def _real_cg(l1: int, l2: int, l3: int) -> np.ndarray:
    c = _su2_cg(l1, l2, l3) / math.sqrt(2 * l3 + 1)
    if not triangle(l1, l2, l3):
        return np.zeros_like(c)
    # Apply the basis changes one axis at a time. Each column of Q has at most two nonzeros
    # (complex m = +-|m|), so every step is O(d^3) gathers instead of O(d^4) dense products.
    t = c.astype(np.complex128)
    for axis, (l, conj) in enumerate(((l1, False), (l2, False), (l3, True))):
        ia, ib, wa, wb = _basis_pairs(l)
        if conj:
            wa, wb = np.conj(wa), np.conj(wb)
        shape = [1, 1, 1]
        shape[axis] = -1
        t = wa.reshape(shape) * np.take(t, ia, axis=axis) + wb.reshape(shape) * np.take(
            t, ib, axis=axis
        )
    imag = np.max(np.abs(t.imag), initial=0.0)
    if imag > 1e-10:  # pragma: no cover - would mean a broken basis change
        raise ArithmeticError(f"real CG ({l1},{l2},{l3}) has imaginary part {imag:.2e}")
    out = np.ascontiguousarray(t.real)
    out[np.abs(out) < 1e-15] = 0.0
    out.setflags(write=False)
    return out


def clebsch_gordan(l1: int, l2: int, l3: int) -> np.ndarray:
    """Real-basis Clebsch-Gordan tensor ``(2l1+1, 2l2+1, 2l3+1)`` in e3nn-jax's convention.

    Equal to ``e3nn.clebsch_gordan(l1, l2, l3)`` (unit Frobenius norm; zero outside the triangle
    rule) but fast and stable for large degrees. Cached; the returned array is read-only.
    """
    _check_degrees(l1, l2, l3)
    return _real_cg(int(l1), int(l2), int(l3))


def wigner_3j(l1: int, l2: int, l3: int, m1: int, m2: int, m3: int) -> float:
    r"""Wigner 3j symbol :math:`\begin{pmatrix} l_1 & l_2 & l_3 \\ m_1 & m_2 & m_3\end{pmatrix}`.

    :math:`= (-1)^{l_1 - l_2 - m_3} \langle l_1 m_1 l_2 m_2 | l_3, -m_3\rangle / \sqrt{2l_3+1}`.
    """
    _check_degrees(l1, l2, l3)
    if m1 + m2 + m3 != 0 or not triangle(l1, l2, l3):
        return 0.0
    if abs(m1) > l1 or abs(m2) > l2 or abs(m3) > l3:
        return 0.0
    c = _su2_cg(int(l1), int(l2), int(l3))[l1 + m1, l2 + m2, l3 - m3]
    return float((-1) ** ((l1 - l2 - m3) % 2) * c / math.sqrt(2 * l3 + 1))


@functools.cache
def wigner_3j_000(l1: int, l2: int, l3: int) -> float:
    r""":math:`\begin{pmatrix} l_1 & l_2 & l_3 \\ 0 & 0 & 0\end{pmatrix}` in closed form.

    Zero unless the triangle rule holds and :math:`J = l_1+l_2+l_3` is even; then with
    :math:`g = J/2` (Edmonds, *Angular Momentum in Quantum Mechanics*, eq. 3.7.17)

    .. math:: (-1)^g \sqrt{\frac{(J-2l_1)!(J-2l_2)!(J-2l_3)!}{(J+1)!}}
              \frac{g!}{(g-l_1)!(g-l_2)!(g-l_3)!}.
    """
    _check_degrees(l1, l2, l3)
    j = l1 + l2 + l3
    if j % 2 or not triangle(l1, l2, l3):
        return 0.0
    g = j // 2
    f = _factorials(j + 1)
    ratio = f[g] // (f[g - l1] * f[g - l2] * f[g - l3])  # an integer (multinomial-like)
    val = math.sqrt(f[j - 2 * l1] * f[j - 2 * l2] * f[j - 2 * l3] * ratio * ratio / f[j + 1])
    return (-1) ** g * val


def gaunt_path_factor(l1: int, l2: int, l3: int) -> float:
    r"""Ratio of a real Gaunt tensor to the e3nn CG tensor of the same path.

    .. math:: G^{l_1 l_2 l_3} = \sqrt{\frac{(2l_1+1)(2l_2+1)(2l_3+1)}{4\pi}}
              \left|\begin{pmatrix} l_1 & l_2 & l_3\\ 0&0&0\end{pmatrix}\right| C^{l_1 l_2 l_3}

    (the sign of the 3j symbol is absorbed by the :math:`(-i)^l` phases of e3nn's real basis, so
    the factor is never negative; it is zero when :math:`l_1+l_2+l_3` is odd).
    """
    w = abs(wigner_3j_000(l1, l2, l3))
    return math.sqrt((2 * l1 + 1) * (2 * l2 + 1) * (2 * l3 + 1) / (4 * math.pi)) * w


@functools.cache
def _real_gaunt(l1: int, l2: int, l3: int) -> np.ndarray:
    out = gaunt_path_factor(l1, l2, l3) * _real_cg(l1, l2, l3)
    out.setflags(write=False)
    return out


def real_gaunt(l1: int, l2: int, l3: int) -> np.ndarray:
    r"""Real Gaunt coefficients :math:`\int_{S^2} Y_{l_1 j} Y_{l_2 k} Y_{l_3 n}\, d\Omega`.

    For e3nn's real spherical harmonics with ``normalization="integral"``
    (:math:`\int Y_{lm}^2 d\Omega = 1`). Shape ``(2l1+1, 2l2+1, 2l3+1)``; equal to
    :func:`gaunt_path_factor` times :func:`clebsch_gordan` (verified against quadrature in the
    tests).
    """
    _check_degrees(l1, l2, l3)
    return _real_gaunt(int(l1), int(l2), int(l3))
