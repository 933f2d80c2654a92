"""Tests for the shared radial-MLP -> linear-map conversion (facet/nn/radial_fit.py).

Everything is NumPy float64; no JAX is needed, so these run in well under a second.
"""

from __future__ import annotations

import numpy as np
import pytest

from facet.nn.radial_fit import fit_linear_radial, linear_map_quality, mixture_distances

R_CUT = 5.0
N_BASIS = 8


def bessel_times_envelope(r: np.ndarray, r_cut: float = R_CUT, n_basis: int = N_BASIS, p=6):
    """SevenNet/NequIP features: sqrt(2/rc) sin(n pi r / rc) / r times the polynomial envelope
    u(x) = 1 - (p+1)(p+2)/2 x^p + p(p+2) x^(p+1) - p(p+1)/2 x^(p+2), x = r/rc (Gasteiger 2020)."""
    n = np.arange(1, n_basis + 1)
    b = np.sqrt(2.0 / r_cut) * np.sin(n * np.pi * r[:, None] / r_cut) / r[:, None]
    x = r / r_cut
    u = (
        1
        - (p + 1) * (p + 2) / 2 * x**p
        + p * (p + 2) * x ** (p + 1)
        - p * (p + 1) / 2 * x ** (p + 2)
    )
    return b * u[:, None]


def mlp(x, layers, act):
    """Bias-free MLP as in e3nn's FullyConnectedNet: h <- act(h @ W / sqrt(fan_in))."""
    h = x
    for i, w in enumerate(layers):
        h = h @ w / np.sqrt(w.shape[0])
        if i < len(layers) - 1:
            h = act(h)
    return h


def silu(x):
    return x / (1 + np.exp(-x))


@pytest.fixture(scope="module")
def layers():
    rng = np.random.default_rng(7)
    return [rng.normal(size=s) for s in [(N_BASIS, 64), (64, 64), (64, 24)]]


@pytest.fixture(scope="module")
def distances():
    rng = np.random.default_rng(1)
    observed = rng.normal(2.6, 0.5, size=5000)
    return mixture_distances(observed, 4096, r_min=0.8, r_max=R_CUT, seed=3)


def test_exactly_representable_mlp_recovered_to_roundoff(layers, distances):
    # With an identity activation the 8 -> 64 -> 64 -> 24 MLP *is* a linear map: the fit must
    # return the product of its weight matrices, and predict unseen distances, to round-off.
    F = bessel_times_envelope(distances)
    Y = mlp(F, layers, act=lambda h: h)
    W_exact = layers[0] @ layers[1] @ layers[2] / np.sqrt(N_BASIS * 64 * 64)
    W, rep = fit_linear_radial(F, Y)
    assert W.shape == (N_BASIS, 24) and W.dtype == np.float64
    rel = np.abs(W - W_exact).max() / np.abs(W_exact).max()
    assert rel < 1e-9, rel
    assert rep.r2_overall > 1 - 1e-14 and np.all(rep.r2_per_output > 1 - 1e-13)
    assert rep.max_abs_error < 1e-11 * np.abs(Y).max()
    r_new = np.linspace(0.5, R_CUT, 333)
    F_new = bessel_times_envelope(r_new)
    np.testing.assert_allclose(F_new @ W, mlp(F_new, layers, act=lambda h: h), atol=1e-11)
    # The envelope makes every linear map vanish at the cutoff, as the MLP does (no bias).
    assert np.abs(bessel_times_envelope(np.array([R_CUT])) @ W).max() < 1e-12


def test_weighted_ridge_solution_is_the_least_squares_optimum():
    rng = np.random.default_rng(11)
    F = rng.normal(size=(300, 8))
    Y = F @ rng.normal(size=(8, 5)) + 0.3 * rng.normal(size=(300, 5))
    # Unweighted: identical to numpy.linalg.lstsq.
    W0, rep0 = fit_linear_radial(F, Y)
    np.testing.assert_allclose(W0, np.linalg.lstsq(F, Y, rcond=None)[0], rtol=1e-12, atol=1e-13)
    resid = F @ W0 - Y
    ss_tot = ((Y - Y.mean(0)) ** 2).sum(0)
    r2 = 1 - (resid**2).sum(0) / ss_tot
    np.testing.assert_allclose(rep0.r2_per_output, r2, rtol=1e-12)
    assert rep0.r2_mean == pytest.approx(r2.mean(), rel=1e-12)
    assert rep0.r2_overall == pytest.approx(1 - (resid**2).sum() / ss_tot.sum(), rel=1e-12)
    assert rep0.max_abs_error == pytest.approx(np.abs(resid).max(), rel=1e-12)
    assert rep0.rmse == pytest.approx(np.sqrt((resid**2).mean()), rel=1e-12)
    assert 0.5 < rep0.r2_overall < 1.0  # the noise is real: not a perfect fit
    # Weighted + ridge: the normal equations (F^T Om F + lam I) W = F^T Om Y.
    w = rng.uniform(0.1, 3.0, size=300)
    lam = 2.5
    W1, rep1 = fit_linear_radial(F, Y, weights=w, ridge=lam)
    W_ne = np.linalg.solve(F.T @ (w[:, None] * F) + lam * np.eye(8), F.T @ (w[:, None] * Y))
    np.testing.assert_allclose(W1, W_ne, rtol=1e-10, atol=1e-12)
    # First-order optimality: the gradient of the objective vanishes ...
    grad = F.T @ (w[:, None] * (F @ W1 - Y)) + lam * W1
    assert np.abs(grad).max() < 1e-9
    # ... and any perturbation increases it.
    obj = lambda W: (w[:, None] * (F @ W - Y) ** 2).sum() + lam * (W**2).sum()
    for _ in range(5):
        assert obj(W1 + 1e-3 * rng.normal(size=W1.shape)) > obj(W1)
    assert rep1.ridge == lam and rep1.rank == 8


def test_nonlinear_silu_mlp_is_fitted_well_but_not_exactly(layers, distances):
    # A SiLU MLP is not exactly linear in its inputs: R^2 is high (the radial functions are
    # smooth) yet measurably below 1, and the residual is orthogonal to the features.
    F = bessel_times_envelope(distances)
    Y = mlp(F, layers, act=silu)
    W, rep = fit_linear_radial(F, Y)
    assert 0.9 < rep.r2_overall < 1 - 1e-8
    assert np.abs(F.T @ (F @ W - Y)).max() < 1e-8 * np.abs(F.T @ Y).max()


def test_linear_map_quality_of_a_given_map(layers, distances):
    # For the least-squares solution it reproduces the fit's own report; for any other map
    # (e.g. one fitted to a layer's outputs, or fine-tuned) it gives the hand-computed R^2 and
    # errors, and the pooled R^2 cannot exceed the least-squares optimum's.
    F = bessel_times_envelope(distances)
    Y = mlp(F, layers, act=silu)
    W, rep = fit_linear_radial(F, Y)
    q = linear_map_quality(F, Y, W)
    for field in ("r2_mean", "r2_overall", "max_abs_error", "rmse", "target_rms", "rank"):
        assert getattr(q, field) == pytest.approx(getattr(rep, field), rel=1e-12), field
    np.testing.assert_allclose(q.r2_per_output, rep.r2_per_output, rtol=1e-12)
    rng = np.random.default_rng(5)
    W2 = W + 0.05 * np.abs(W).max() * rng.normal(size=W.shape)
    q2 = linear_map_quality(F, Y, W2)
    resid = F @ W2 - Y
    ss_tot = ((Y - Y.mean(0)) ** 2).sum(0)
    np.testing.assert_allclose(q2.r2_per_output, 1 - (resid**2).sum(0) / ss_tot, rtol=1e-12)
    assert q2.r2_overall == pytest.approx(1 - (resid**2).sum() / ss_tot.sum(), rel=1e-12)
    assert q2.max_abs_error == pytest.approx(np.abs(resid).max(), rel=1e-12)
    assert q2.r2_overall < rep.r2_overall - 1e-6
    # Sample weights enter exactly as in the fit: weight 2 equals a duplicated sample.
    w = np.ones(len(F))
    w[:10] = 2.0
    qw = linear_map_quality(F, Y, W2, weights=w)
    qd = linear_map_quality(np.vstack([F, F[:10]]), np.vstack([Y, Y[:10]]), W2)
    assert qw.r2_overall == pytest.approx(qd.r2_overall, rel=1e-12)
    with pytest.raises(ValueError, match=r"must be \(n_basis, n_out\) = \(8, 24\)"):
        linear_map_quality(F, Y, W[:, :3])
    with pytest.raises(ValueError, match=r"W has shape \(7, 24\)"):
        linear_map_quality(F, Y, W[:7])


def test_constant_output_has_undefined_r2():
    rng = np.random.default_rng(0)
    F = rng.normal(size=(50, 3))
    Y = np.column_stack([F @ np.array([1.0, 2.0, 3.0]), np.zeros(50)])
    W, rep = fit_linear_radial(F, Y)
    assert np.isnan(rep.r2_per_output[1]) and rep.r2_per_output[0] == pytest.approx(1.0)
    assert rep.r2_mean == pytest.approx(1.0) and np.allclose(W[:, 1], 0.0)


@pytest.mark.parametrize(
    ("features", "targets", "kwargs", "match"),
    [
        (np.ones(10), np.ones((10, 2)), {}, "features must be a 2-D array"),
        (np.ones((10, 3)), np.ones(10), {}, "targets must be a 2-D array"),
        (np.ones((10, 3)), np.ones((9, 2)), {}, "targets has 9 rows but features has 10"),
        (np.eye(4)[:, :3], np.ones((4, 2)), {"weights": np.ones(3)}, r"weights must have shape"),
        (np.eye(4)[:, :3], np.ones((4, 2)), {"weights": -np.ones(4)}, "non-negative"),
        (np.eye(4)[:, :3], np.ones((4, 2)), {"ridge": -1.0}, "ridge must be"),
        (np.full((4, 3), np.nan), np.ones((4, 2)), {}, "NaN or inf .*row 0"),
        (np.ones((2, 3)), np.ones((2, 1)), {}, "rank 1 < n_basis = 3"),
    ],
)
def test_bad_input_gives_clear_error(features, targets, kwargs, match):
    with pytest.raises(ValueError, match=match):
        fit_linear_radial(features, targets, **kwargs)


def test_rank_deficient_problem_is_solved_with_ridge():
    F = np.ones((2, 3))
    W, rep = fit_linear_radial(F, np.full((2, 1), 3.0), ridge=1e-8)
    # Minimum-norm-like solution: spread evenly over the three identical columns.
    np.testing.assert_allclose(W[:, 0], 1.0, rtol=1e-6)
    assert rep.rank == 1


def test_mixture_distances_proportions_and_range():
    observed = np.concatenate([np.full(100, 2.0), np.array([0.1, 9.0, np.nan])])
    d = mixture_distances(observed, 1000, r_min=0.5, r_max=5.0, uniform_fraction=0.3, seed=5)
    assert d.shape == (1000,) and np.all(np.diff(d) >= 0)
    assert d.min() >= 0.5 and d.max() <= 5.0
    assert np.sum(d == 2.0) == 700  # out-of-range and NaN observations are never drawn
    np.testing.assert_array_equal(
        d, mixture_distances(observed, 1000, r_min=0.5, r_max=5.0, uniform_fraction=0.3, seed=5)
    )
    with pytest.raises(ValueError, match="no observed distance lies in"):
        mixture_distances(np.array([9.0]), 10, r_min=0.5, r_max=5.0)
