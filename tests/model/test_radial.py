"""Radial envelope, B-spline basis, MLP -> spline conversion and the ZBL pair term (float64)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from facet.nn.interaction import RadialMap
from facet.nn.radial import bspline_basis, cubic_bspline, linearize_radial_mlp, polynomial_envelope
from facet.nn.zbl import KE, covalent_radii, zbl_pair_energy

RC = 5.0


def test_envelope_is_c2_at_the_cutoff(x64):
    u = lambda r: polynomial_envelope(r, RC, 6)  # noqa: E731
    du = jax.grad(u)
    d2u = jax.grad(du)
    assert float(u(0.0)) == 1.0
    # u ~ eps^3, u' ~ eps^2, u'' ~ eps just below the cutoff (eps = 2e-8 here)
    for f, tol in ((u, 1e-18), (du, 1e-12), (d2u, 1e-6)):
        assert abs(float(f(RC - 1e-7))) < tol
        assert float(f(RC + 0.1)) == 0.0
    # and it is not trivially zero inside
    assert 0.1 < float(u(0.7 * RC)) < 0.9


def test_bspline_partition_of_unity_and_continuity(x64):
    n = 10
    h = RC / (n - 1)
    r = jnp.linspace(h, RC - h, 301)
    np.testing.assert_allclose(bspline_basis(r, n, RC).sum(-1), 1.0, atol=1e-14)
    # C^2 at the knots of B_3: left and right second derivatives agree, third does not
    d2 = jax.grad(jax.grad(cubic_bspline))
    for knot in (-1.0, 0.0, 1.0):
        assert abs(float(d2(knot - 1e-7)) - float(d2(knot + 1e-7))) < 1e-5
    d3 = jax.grad(d2)
    assert abs(float(d3(1.0 - 1e-3)) - float(d3(1.0 + 1e-3))) > 1.0
    # unit integral (trapezoid on a fine grid)
    u = jnp.linspace(-2.5, 2.5, 20001)
    np.testing.assert_allclose(jnp.trapezoid(cubic_bspline(u), u), 1.0, atol=1e-7)


def _features(d):
    d = jnp.asarray(d)
    return np.asarray(bspline_basis(d, 8, RC) * polynomial_envelope(d, RC, 6)[:, None])


def test_linearize_recovers_an_exactly_representable_mlp(x64):
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(8, 16)), rng.normal(size=(16, 5))
    mlp = lambda d: _features(d) @ a @ b  # two linear layers, identity activation  # noqa: E731
    w, report = linearize_radial_mlp(mlp, _features, rng.uniform(0.5, RC, 400))
    np.testing.assert_allclose(w, a @ b, rtol=1e-9, atol=1e-9)
    assert report.r2_overall > 1 - 1e-14


def test_radial_map_linear_form_is_the_spline(x64):
    rm = RadialMap(8, (), 3, rngs=nnx.Rngs(0), dtype=jnp.float64)
    d = jnp.linspace(0.5, 4.9, 50)
    f = jnp.asarray(_features(d))
    np.testing.assert_allclose(rm(f), f @ rm.layers[0][...], atol=1e-14)
    # a fitted W loaded into the linear map reproduces a trained radial MLP on the samples
    mlp = RadialMap(8, (16, 16), 3, rngs=nnx.Rngs(1), dtype=jnp.float64)
    w, report = linearize_radial_mlp(
        lambda x: np.asarray(mlp(jnp.asarray(_features(x)))),
        _features,
        np.linspace(0.8, 4.99, 2000),
    )
    assert report.r2_overall > 0.9


def test_zbl_limits(x64):
    r = jnp.asarray([1e-4, 1e-3])
    z1, z2 = jnp.asarray([14, 14]), jnp.asarray([8, 8])
    # r -> 0: bare Coulomb repulsion of the nuclei (the screening sums to 1)
    e = zbl_pair_energy(r, z1, z2)
    np.testing.assert_allclose(e * r / (KE * 14 * 8), 1.0, rtol=1e-2)
    assert float(e[0]) > float(e[1]) > 0
    # switched off smoothly at the sum of covalent radii
    rmax = covalent_radii()[14] + covalent_radii()[8]
    g = jax.grad(lambda x: zbl_pair_energy(x, jnp.asarray(14), jnp.asarray(8)))
    assert float(zbl_pair_energy(jnp.asarray(rmax + 1e-3), jnp.asarray(14), jnp.asarray(8))) == 0
    assert abs(float(g(rmax - 1e-6))) < 1e-9


def _zbl_reference(r, z1, z2):
    """ZBL universal potential written out from its source (Ziegler, Biersack, Littmark 1985,
    eq. 2-58), with e^2/(4 pi eps0) from CODATA through scipy.constants; independent of
    facet.nn.zbl's constants."""
    from scipy import constants as c

    ke = c.e / (4 * np.pi * c.epsilon_0) * 1e10  # e^2/(4 pi eps0) in eV * A
    a = 0.46850 / (z1**0.23 + z2**0.23)  # A; 0.8854 a_0 as tabulated (LAMMPS pair zbl too)
    x = r / a
    phi = (0.18175 * np.exp(-3.1998 * x) + 0.50986 * np.exp(-0.94229 * x)
           + 0.28022 * np.exp(-0.4029 * x) + 0.02817 * np.exp(-0.20162 * x))
    return ke * z1 * z2 / r * phi


@pytest.mark.parametrize("z1,z2", [(1, 1), (14, 8), (74, 26)])
def test_zbl_matches_the_published_formula(x64, z1, z2):
    """Energies at distances from the nuclear limit to the switching region equal the published
    formula times the (separately tested) polynomial envelope; a wrong coefficient, exponent or
    screening length changes them by far more than the 1e-8 allowed (the last digit of the
    screening length alone moves them by ~1e-4)."""
    rmax = covalent_radii()[z1] + covalent_radii()[z2]
    r = np.linspace(0.02, 0.95, 12) * rmax
    got = np.asarray(zbl_pair_energy(jnp.asarray(r), jnp.asarray(z1), jnp.asarray(z2)))
    env = np.asarray(polynomial_envelope(jnp.asarray(r), rmax, 6))
    np.testing.assert_allclose(got, _zbl_reference(r, z1, z2) * env, rtol=1e-8)
    assert KE == pytest.approx(_zbl_reference(1e-9, 1, 1) * 1e-9, rel=1e-6)
