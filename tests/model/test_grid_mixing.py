"""The exact-quadrature rule of the grid layer and the E(3) equivariance of the mixing MLP.

Float64 throughout; references come from fine grids, not from the code under test.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from facet.nn.grid import exact_resolution, grid_matrices, grid_points
from facet.nn.grid_mixing import GRID_ACTIVATIONS, GridActivation, GridMixer
from facet.nn.linear import feature_irreps


def _product_coeffs(coeffs, ls, res):
    """Project the pointwise product of the given signals back onto ``ls`` on grid ``res``."""
    tg, fg = grid_matrices(ls, *res)
    prod = np.prod([c @ tg for c in coeffs], axis=0)
    return prod @ fg


@pytest.mark.parametrize("lmax,degree", [(1, 2), (2, 1), (2, 2), (2, 3), (3, 2), (3, 3), (4, 2)])
def test_resolution_rule_is_exact_and_minimal(lmax, degree):
    ls = tuple(range(lmax + 1))
    rng = np.random.default_rng(lmax * 10 + degree)
    coeffs = [rng.normal(size=(lmax + 1) ** 2) for _ in range(degree)]
    nb, na = exact_resolution(lmax, degree)
    ref = _product_coeffs(coeffs, ls, (nb + 6, na + 12))
    exact = _product_coeffs(coeffs, ls, (nb, na))
    np.testing.assert_allclose(exact, ref, atol=1e-12 * np.abs(ref).max())
    if degree > 1:  # a linear map needs no product; only then is one point fewer harmless
        # negative controls: one beta ring fewer, or one azimuth fewer, aliases
        assert np.abs(_product_coeffs(coeffs, ls, (nb - 1, na)) - ref).max() > 1e-6
        assert np.abs(_product_coeffs(coeffs, ls, (nb, na - 1)) - ref).max() > 1e-6


def test_grid_weights_integrate_the_sphere():
    pts, w = grid_points(5, 10)
    np.testing.assert_allclose(np.linalg.norm(pts, axis=1), 1.0, atol=1e-14)
    np.testing.assert_allclose(w.sum(), 4 * np.pi, rtol=1e-14)
    # <x^2> = 1/3 over the sphere (degree 2, well within the grid's exactness)
    np.testing.assert_allclose((w * pts[:, 0] ** 2).sum() / (4 * np.pi), 1 / 3, rtol=1e-13)


def test_grid_is_the_tensor_product_librarys_grid(x64):
    """One grid in the code base: the mixing layer's points are tensorproducts.s2grid's (same
    order, same bits), its weights are s2grid's times 4 pi, and its matrices are e3nn's
    component-normalised harmonics at those points."""
    import e3nn_jax as e3nn

    from tensorproducts import s2grid

    nb, na = exact_resolution(3, 2)
    assert (nb, na) == s2grid.exact_resolution(3 * 3)
    pts, w = grid_points(nb, na)
    np.testing.assert_array_equal(pts, s2grid.grid_vectors(nb, na).reshape(-1, 3))
    np.testing.assert_allclose(
        w, 4 * np.pi * np.repeat(s2grid.grid_points(nb, na)[2], na), rtol=1e-15
    )
    ls = (0, 1, 3)
    tg, fg = grid_matrices(ls, nb, na)
    irreps = e3nn.Irreps([(1, (l, (-1) ** l)) for l in ls])
    y = np.asarray(e3nn.spherical_harmonics(irreps, pts, True, normalization="component").array)
    np.testing.assert_allclose(tg, y.T, atol=1e-13)
    np.testing.assert_allclose(fg, w[:, None] * y / (4 * np.pi), atol=1e-15)


def _equivariance_error(mixer, irreps, q, seed=0):
    x = jax.random.normal(jax.random.PRNGKey(seed), (6, mixer.lin_a.w.shape[1], irreps.dim))
    d = irreps.D_from_matrix(jnp.asarray(q))
    y1 = mixer(x @ d.T)
    y2 = mixer(x) @ d.T
    return float(jnp.abs(y1 - y2).max() / jnp.abs(y2).max())


def _rot(seed):
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q * np.sign(np.linalg.det(q))


@pytest.mark.parametrize("lmax,pseudo", [(2, False), (2, True), (3, True)])
def test_quadratic_mixer_is_exactly_e3_equivariant(pseudo, lmax, x64):
    mixer = GridMixer(8, 6, lmax, pseudo, rngs=nnx.Rngs(0), dtype=jnp.float64)
    irreps = feature_irreps(lmax, pseudo)
    for q in (_rot(1), -np.eye(3), -_rot(2)):
        assert _equivariance_error(mixer, irreps, q) < 1e-13


@pytest.mark.parametrize("pseudo", [False, True])
def test_undersampled_grid_breaks_equivariance(pseudo, x64):
    nb, na = exact_resolution(2, 2)
    mixer = GridMixer(8, 6, 2, pseudo, resolution=(nb - 1, na), rngs=nnx.Rngs(0), dtype=jnp.float64)
    assert _equivariance_error(mixer, feature_irreps(2, pseudo), _rot(3)) > 1e-3


def test_wrong_parity_activation_is_only_so3(x64, monkeypatch):
    # An even function of the pseudo field feeding the pseudo output: rotations stay exact, but
    # inversion fails. The registered activations must not behave like this.
    bad = GridActivation(lambda u, v: [u, u * u], lambda u, v: [v * v], degree=2)
    monkeypatch.setitem(GRID_ACTIVATIONS, "bad-parity", bad)
    mixer = GridMixer(8, 6, 2, True, activation="bad-parity", rngs=nnx.Rngs(0), dtype=jnp.float64)
    irreps = feature_irreps(2, True)
    assert _equivariance_error(mixer, irreps, _rot(4)) < 1e-13
    assert _equivariance_error(mixer, irreps, -np.eye(3)) > 1e-2


def test_silu_is_approximate_and_improves_with_resolution(x64):
    irreps = feature_irreps(2, True)
    errs = []
    for res in [(6, 11), (12, 23), (24, 47)]:
        mixer = GridMixer(
            8, 6, 2, True, activation="silu", resolution=res, rngs=nnx.Rngs(0), dtype=jnp.float64
        )
        errs.append(max(_equivariance_error(mixer, irreps, q) for q in (_rot(5), -_rot(6))))
    assert errs[0] > 1e-6  # aliasing is real: SiLU is not band-limited
    assert errs[2] < errs[1] < errs[0]
