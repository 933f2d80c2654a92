"""so2: edge-frame rotations, exact agreement with cg-dense (plain and per-path weighted),
directions at the poles, and clear errors. Contract checks are in test_contract.py."""

from __future__ import annotations

import e3nn_jax as e3nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from e3nn_jax._src.J import Jd

from tensorproducts import _irreps
from tensorproducts import so2 as S
from tensorproducts.cg_dense import cg_dense

L = 4
X_IRREPS = e3nn.s2_irreps(L) + e3nn.Irreps("1e + 2o")
Y_IRREPS = e3nn.s2_irreps(3)
OUT = e3nn.Irreps("0e + 0o + 1o + 1e + 2e + 2o + 3o + 3e + 4e + 4o")


def test_wigner_j_matches_e3nn():
    for l in range(len(Jd)):
        np.testing.assert_allclose(S.wigner_j(l), Jd[l], atol=1e-12)


def test_edge_frame_rotation(x64):
    vec = jax.random.normal(jax.random.PRNGKey(0), (6, 3), jnp.float64)
    sh = e3nn.spherical_harmonics(e3nn.s2_irreps(8), vec, normalize=True)
    alpha, beta = S.edge_angles(sh)
    rot = S.rotate(sh.array, sh.irreps, alpha, beta, inverse=True)
    pole = e3nn.spherical_harmonics(e3nn.s2_irreps(8), jnp.array([0.0, 1.0, 0.0]), True).array
    np.testing.assert_allclose(np.asarray(rot), np.broadcast_to(pole, rot.shape), atol=1e-12)
    back = S.rotate(rot, sh.irreps, alpha, beta, inverse=False)
    np.testing.assert_allclose(np.asarray(back), np.asarray(sh.array), atol=1e-12)


def _inputs(key, vec=None, n=5):
    k1, k2 = jax.random.split(key)
    x = e3nn.normal(X_IRREPS, k1, (n,), dtype=jnp.float64).regroup()
    if vec is None:
        vec = jax.random.normal(k2, (n, 3), jnp.float64)
    return x, e3nn.spherical_harmonics(Y_IRREPS, vec, normalize=True)


def test_equals_cg_dense(x64):
    x, y = _inputs(jax.random.PRNGKey(1))
    z = S.so2_product(x, y, OUT)
    ref = cg_dense(x, y, OUT)
    np.testing.assert_allclose(np.asarray(z.array), np.asarray(ref.array), atol=1e-12)


def test_per_path_weights_equal_weighted_cg_dense(x64):
    x, y = _inputs(jax.random.PRNGKey(2))
    paths = _irreps.cg_paths(x.irreps, y.irreps, OUT)
    wp = jax.random.normal(jax.random.PRNGKey(3), (5, len(paths)), jnp.float64)
    slots = S.cg_weights(x.irreps, y.irreps, OUT, S.frame_m0(y), wp)
    assert slots.shape == (5, len(S.weight_slots(x.irreps, y.irreps, OUT)))
    z = S.so2_product(x, y, OUT, slots)
    ref = cg_dense(x, y, OUT, wp)
    np.testing.assert_allclose(np.asarray(z.array), np.asarray(ref.array), atol=1e-12)


def test_edges_at_and_near_the_poles(x64):
    vec = jnp.array([[0.0, 1.0, 0.0], [0.0, -2.0, 0.0], [1e-9, 1.0, 0.0], [0.0, 1.0, -1e-12]])
    x, y = _inputs(jax.random.PRNGKey(4), vec=vec, n=4)
    z = S.so2_product(x, y, OUT)
    ref = cg_dense(x, y, OUT)
    np.testing.assert_allclose(np.asarray(z.array), np.asarray(ref.array), atol=1e-10)


def test_clear_errors():
    x = e3nn.normal("0e + 1o", jax.random.PRNGKey(0), (2,))
    y = e3nn.normal("0e + 2e", jax.random.PRNGKey(1), (2,))
    with pytest.raises(ValueError, match="degree 1"):
        S.so2_product(x, y, "0e")
    sh = e3nn.spherical_harmonics("0e + 1o", jnp.ones((2, 3)), True)
    with pytest.raises(ValueError, match="weights must have shape"):
        S.so2_product(x, sh, "0e + 1o", weights=jnp.ones((2, 1000)))
