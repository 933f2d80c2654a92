"""gaunt-grid and vector-gaunt-grid: known values, Gaunt integrals, path sets, exactness."""

from __future__ import annotations

import math

import e3nn_jax as e3nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from tensorproducts import REGISTRY, _irreps, s2grid
from tensorproducts.clebsch_gordan import real_gaunt
from tensorproducts.gaunt_grid import gaunt_grid
from tensorproducts.vector_gaunt_grid import derivative_tables, vector_gaunt_grid


def _vec(key):
    return e3nn.normal("1o", key, (), dtype=jnp.float64)


def test_known_values_dot_and_cross(x64):
    """1o.1o -> 0e is the dot product; the VSH product 1o x 1o -> 1e is sqrt(3) times the cross
    product (and Gaunt has no 1e output: the cross product is antisymmetric)."""
    a, b = _vec(jax.random.PRNGKey(0)), _vec(jax.random.PRNGKey(1))
    np.testing.assert_allclose(gaunt_grid(a, b, "0e").array, [a.array @ b.array], rtol=1e-13)
    cross = np.cross(a.array, b.array)
    np.testing.assert_allclose(
        vector_gaunt_grid(a, b, "1e").array, math.sqrt(3) * cross, rtol=1e-13
    )
    assert float(jnp.max(jnp.abs(gaunt_grid(a, b, "1e").array))) == 0.0
    assert float(jnp.max(jnp.abs(vector_gaunt_grid(a, b, "0e + 2e").array))) < 1e-14


@pytest.mark.parametrize(
    "ir1,ir2,ir3", [("2e", "2e", "2e"), ("3o", "2e", "1o"), ("1e", "2o", "3o"), ("4e", "3e", "5e")]
)
def test_gaunt_grid_is_the_gaunt_integral(ir1, ir2, ir3, x64):
    """z_k = sqrt(4 pi) sum_ij G_ijk x_i y_j with G = int Y Y Y (pseudo-parity inputs included)."""
    x = e3nn.normal(ir1, jax.random.PRNGKey(2), (), dtype=jnp.float64)
    y = e3nn.normal(ir2, jax.random.PRNGKey(3), (), dtype=jnp.float64)
    l1, l2, l3 = (e3nn.Irrep(i).l for i in (ir1, ir2, ir3))
    want = math.sqrt(4 * math.pi) * np.einsum(
        "i,j,ijk->k", x.array, y.array, real_gaunt(l1, l2, l3)
    )
    np.testing.assert_allclose(gaunt_grid(x, y, ir3).array, want, atol=1e-13)


@pytest.mark.slow  # e3nn compiles its Legendre tables per degree: ~20 s on a busy CPU
def test_matches_e3nn_grid_product(x64):
    """Same as e3nn's to_s2grid x to_s2grid -> from_s2grid on a finer (10 x 21) grid."""
    x = e3nn.normal(e3nn.s2_irreps(3), jax.random.PRNGKey(4), (2,), dtype=jnp.float64)
    y = e3nn.normal(e3nn.s2_irreps(2), jax.random.PRNGKey(5), (2,), dtype=jnp.float64)
    out = e3nn.s2_irreps(5)

    @jax.jit
    def ref_fn(x, y):
        fx = e3nn.to_s2grid(x, 10, 21, quadrature="gausslegendre")
        fy = e3nn.to_s2grid(y, 10, 21, quadrature="gausslegendre")
        return e3nn.from_s2grid(fx * fy, out)

    ref = ref_fn(x, y)
    np.testing.assert_allclose(gaunt_grid(x, y, out).array, ref.array, atol=1e-12)


def test_path_sets_at_l10():
    """s2_irreps(10) inputs, outputs of any parity up to 20: CG 891 paths, Gaunt 506, vector
    Gaunt the other 385 (Xie et al. 2025); Gaunt and vector Gaunt together cover CG exactly."""
    ir = e3nn.s2_irreps(10)
    out = e3nn.Irreps([(1, (l, p)) for l in range(21) for p in (1, -1)])
    cg = REGISTRY["cg-dense"].paths(ir, ir, out)
    gaunt = REGISTRY["gaunt-grid"].paths(ir, ir, out)
    vec = REGISTRY["vector-gaunt-grid"].paths(ir, ir, out)
    assert (len(cg), len(gaunt), len(vec)) == (891, 506, 385)
    assert set(gaunt) | set(vec) == set(cg) and not set(gaunt) & set(vec)


@pytest.mark.parametrize("fn,deg", [(gaunt_grid, 0), (vector_gaunt_grid, -1)])
def test_undersampled_grid_fails(fn, deg, x64):
    """Negative control: one beta point fewer than the exact rule gives a wrong product."""
    lmax = 3
    x = e3nn.normal(e3nn.s2_irreps(lmax), jax.random.PRNGKey(6), (), dtype=jnp.float64)
    y = e3nn.normal(e3nn.s2_irreps(lmax), jax.random.PRNGKey(7), (), dtype=jnp.float64)
    out = _irreps.reachable_irreps(x.irreps, y.irreps)
    nb, na = s2grid.exact_resolution(4 * lmax + deg)
    exact = fn(x, y, out)
    np.testing.assert_allclose(
        fn(x, y, out, resolution=(3 * nb, 3 * na)).array, exact.array, atol=1e-12
    )
    under = fn(x, y, out, resolution=(nb - 1, na))
    assert float(jnp.max(jnp.abs(under.array - exact.array))) > 1e-3


def test_derivative_tables_match_finite_differences():
    """d/dbeta of the Legendre table (central differences of scipy's lpmv, independent of the
    ladder formula), the alpha-derivative table and the 1/sin(beta) table."""
    lmax, nb, na = 6, 7, 13
    dleg, sleg, a_tab, da_tab = derivative_tables(lmax, nb, na)
    y, alpha, _ = s2grid.grid_points(nb, na)
    beta, h = np.arccos(y), 1e-6

    def table_at(b):
        return np.stack([_legendre_at(lmax, np.cos(bb)) for bb in b], axis=1)  # [m, b, l]

    fd = (table_at(beta + h) - table_at(beta - h)) / (2 * h)
    m = np.abs(np.arange(-lmax, lmax + 1))
    np.testing.assert_allclose(dleg, math.sqrt(4 * math.pi) * fd[m], atol=1e-7)
    np.testing.assert_allclose(table_at(beta)[m], s2grid.legendre_table(lmax, nb)[m], atol=1e-13)
    for i, mm in enumerate(range(-lmax, lmax + 1)):
        np.testing.assert_allclose(a_tab[i], _basis(mm, alpha), atol=1e-14)
        fd_a = (_basis(mm, alpha + h) - _basis(mm, alpha - h)) / (2 * h)
        np.testing.assert_allclose(da_tab[i], fd_a, atol=1e-7)
    np.testing.assert_allclose(
        sleg * np.sqrt(1 - y**2)[None, :, None],
        math.sqrt(4 * math.pi) * s2grid.legendre_table(lmax, nb)[m],
        atol=1e-13,
    )


def _basis(m, alpha):
    if m == 0:
        return np.ones_like(alpha)
    return math.sqrt(2) * (np.cos(m * alpha) if m > 0 else np.sin(-m * alpha))


def _legendre_at(lmax, cos_b):
    """Normalised Legendre functions at one cos(beta) via scipy (independent of s2grid)."""
    from scipy.special import lpmv

    out = np.zeros((lmax + 1, lmax + 1))
    for mm in range(lmax + 1):
        for l in range(mm, lmax + 1):
            norm = math.sqrt(
                (2 * l + 1) / (4 * math.pi) * math.factorial(l - mm) / math.factorial(l + mm)
            )
            out[mm, l] = (-1) ** mm * norm * lpmv(mm, l, cos_b)  # remove Condon-Shortley
    return out


@pytest.mark.parametrize("fn", [gaunt_grid, vector_gaunt_grid])
def test_float64_finite_difference_gradients(fn, x64):
    ir1, ir2, out = "0e + 1o + 2o", "1o + 1e + 2e", "0e + 1o + 1e + 2e + 2o + 3o"
    x = e3nn.normal(ir1, jax.random.PRNGKey(8), (2,), dtype=jnp.float64)
    y = e3nn.normal(ir2, jax.random.PRNGKey(9), (2,), dtype=jnp.float64)

    def f(xa, ya):
        z = fn(e3nn.IrrepsArray(ir1, xa), e3nn.IrrepsArray(ir2, ya), out).array
        return jnp.sum(jnp.tanh(z))

    check_grads(f, (x.array, y.array), order=1, modes=("rev",), atol=1e-6, rtol=1e-6)
