"""Clebsch-Gordan, 3j and Gaunt coefficients: e3nn agreement, unitarity, intertwining."""

from __future__ import annotations

import itertools
import math

import e3nn_jax as e3nn
import numpy as np
import pytest

from tensorproducts.clebsch_gordan import (
    clebsch_gordan,
    real_gaunt,
    su2_clebsch_gordan,
    wigner_3j,
    wigner_3j_000,
)


def test_matches_e3nn_for_small_degrees():
    for l1, l2, l3 in itertools.product(range(5), range(5), range(9)):
        np.testing.assert_allclose(
            clebsch_gordan(l1, l2, l3), e3nn.clebsch_gordan(l1, l2, l3), atol=1e-14, rtol=0
        )


def test_known_complex_values():
    # <1 1 1 -1 | 0 0> = 1/sqrt(3) and <2 1 1 0 | 3 1> = sqrt(8/15) (Condon-Shortley tables)
    assert su2_clebsch_gordan(1, 1, 0)[2, 0, 0] == pytest.approx(1 / math.sqrt(3), abs=1e-15)
    assert su2_clebsch_gordan(2, 1, 3)[3, 1, 4] == pytest.approx(math.sqrt(8 / 15), abs=1e-15)
    # (2 2 2; 0 0 0) = -sqrt(2/35)
    assert wigner_3j_000(2, 2, 2) == pytest.approx(-math.sqrt(2 / 35), abs=1e-15)
    assert wigner_3j_000(1, 1, 1) == 0.0
    for l1, l2, l3 in [(2, 2, 2), (4, 3, 3), (10, 6, 8), (12, 12, 24)]:
        assert wigner_3j(l1, l2, l3, 0, 0, 0) == pytest.approx(wigner_3j_000(l1, l2, l3), rel=1e-13)
    # Closed form (l l 0; m -m 0) = (-1)^(l-m) / sqrt(2l+1)
    for l, m in [(3, 2), (7, -5), (15, 11)]:
        assert wigner_3j(l, l, 0, m, -m, 0) == pytest.approx((-1) ** (l - m) / math.sqrt(2 * l + 1))


@pytest.mark.parametrize("l1,l2,l3", [(12, 12, 24), (20, 20, 20), (17, 9, 13)])
def test_large_degree_unitarity(l1, l2, l3):
    """Columns of the real CG are orthonormal (times 1/(2l3+1)); e3nn fails at (12, 12, 24)."""
    c = clebsch_gordan(l1, l2, l3).reshape(-1, 2 * l3 + 1)
    np.testing.assert_allclose(c.T @ c, np.eye(2 * l3 + 1) / (2 * l3 + 1), atol=1e-14)


def test_completeness_over_l3():
    l1, l2 = 9, 7
    full = np.concatenate(
        [
            math.sqrt(2 * l3 + 1) * clebsch_gordan(l1, l2, l3).reshape(-1, 2 * l3 + 1)
            for l3 in range(abs(l1 - l2), l1 + l2 + 1)
        ],
        axis=1,
    )
    np.testing.assert_allclose(full @ full.T, np.eye((2 * l1 + 1) * (2 * l2 + 1)), atol=1e-13)


@pytest.mark.parametrize("l1,l2,l3", [(3, 4, 5), (5, 5, 2), (8, 6, 11)])
def test_intertwines_rotations(l1, l2, l3):
    """C is invariant: D1 (x) D2 (x) D3 applied to C gives C back (e3nn's D matrices)."""
    rng = np.random.default_rng(0)
    a, b, g = rng.uniform(0, 2 * np.pi, 3)
    d1, d2, d3 = (np.asarray(e3nn.Irrep(l, 1).D_from_angles(a, b, g)) for l in (l1, l2, l3))
    c = clebsch_gordan(l1, l2, l3)
    rotated = np.einsum("ij,kl,mn,jln->ikm", d1, d2, d3, c)
    np.testing.assert_allclose(rotated, c, atol=2e-6)  # e3nn's D matrices are float32


def test_real_gaunt_matches_quadrature(x64):
    """Gaunt = integral of three e3nn real spherical harmonics (exact Gauss-Legendre quadrature)."""
    lmax = 4
    nb, na = 2 * lmax + 2, 3 * lmax + 2
    y, w = np.polynomial.legendre.leggauss(nb)
    alpha = 2 * np.pi * np.arange(na) / na
    s = np.sqrt(1 - y**2)[:, None]
    vec = np.stack([s * np.sin(alpha), y[:, None] + 0 * alpha, s * np.cos(alpha)], -1)
    sh = np.asarray(
        e3nn.spherical_harmonics(e3nn.s2_irreps(lmax), vec, True, normalization="integral").array,
        dtype=np.float64,
    )
    weights = (w[:, None] * np.full(na, 2 * np.pi / na))[..., None]
    for l1, l2, l3 in [(1, 1, 2), (2, 2, 2), (3, 2, 1), (4, 4, 4), (4, 3, 3), (2, 1, 1)]:
        y1 = sh[..., l1**2 : (l1 + 1) ** 2]
        y2 = sh[..., l2**2 : (l2 + 1) ** 2]
        y3 = sh[..., l3**2 : (l3 + 1) ** 2]
        quad = np.einsum("bai,baj,bak,ba->ijk", y1, y2, y3, weights[..., 0])
        np.testing.assert_allclose(real_gaunt(l1, l2, l3), quad, atol=1e-13)
