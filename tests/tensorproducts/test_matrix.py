"""matrix: embedding known values, parity-correct antisymmetric paths, per-degree weights.

Equivariance under rotation and inversion and cg-dense agreement are in test_contract.py.
"""

from __future__ import annotations

import e3nn_jax as e3nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tensorproducts import matrix as mx
from tensorproducts.clebsch_gordan import clebsch_gordan


def test_constant_function_embeds_as_identity():
    # X = P M_f P with f = 1 is the identity on V (Gaunt(la, 0, lb) = delta / sqrt(4 pi))
    emb = mx.embedding_table(2, 3)
    np.testing.assert_allclose(emb[0], np.eye(16), atol=1e-13)


def test_embedding_is_a_compressed_multiplication_operator():
    # <Y_a | f | Y_b> for f = Y_lm: symmetric in (a, b), zero unless la + l + lb is even
    emb = mx.embedding_table(3, 2)
    np.testing.assert_allclose(emb, np.transpose(emb, (0, 2, 1)), atol=1e-14)
    for l in range(4):
        for la in range(3):
            for lb in range(3):
                blk = emb[l * l : (l + 1) ** 2, la * la : (la + 1) ** 2, lb * lb : (lb + 1) ** 2]
                if (l + la + lb) % 2:
                    assert np.abs(blk).max() == 0.0


def test_antisymmetric_path_has_the_right_parity(x64):
    # 1o x 1o -> 1e is the cross product (a path Gaunt lacks); 1o x 1o -> 1o must be zero
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    a = e3nn.normal("1o", k1, (4,), dtype=jnp.float64)
    b = e3nn.normal("1o", k2, (4,), dtype=jnp.float64)
    z = mx.matrix_tp(a, b, "1e + 1o")
    cg = np.sqrt(3) * np.einsum("...i,...j,ijk->...k", a.array, b.array, clebsch_gordan(1, 1, 1))
    factor = mx.matrix_normalisation(1, 1, 1)
    assert abs(factor) > 0.1
    np.testing.assert_allclose(np.asarray(z.array[:, :3]), factor * cg, atol=1e-12)
    cross = np.cross(np.asarray(a.array), np.asarray(b.array))
    ratio = np.asarray(z.array[:, :3]) / cross
    np.testing.assert_allclose(ratio, ratio[0, 0], rtol=1e-10)  # proportional to x cross y
    assert float(jnp.abs(z.array[:, 3:]).max()) == 0.0


def test_pseudo_inputs_swap_output_classes(x64):
    # 1e x 1o -> 1o (the cross product of a pseudo- and a polar vector is polar)
    k1, k2 = jax.random.split(jax.random.PRNGKey(1))
    a = e3nn.normal("1e", k1, (3,), dtype=jnp.float64)
    b = e3nn.normal("1o", k2, (3,), dtype=jnp.float64)
    z = mx.matrix_tp(a, b, "0e + 0o + 1e + 1o")
    assert float(jnp.abs(z.array[:, 0]).max()) == 0.0  # 0e forbidden
    assert float(jnp.abs(z.array[:, 2:5]).max()) == 0.0  # 1e forbidden
    assert float(jnp.abs(z.array[:, 1]).max()) > 1e-3  # 0o = dot product
    assert float(jnp.abs(z.array[:, 5:]).max()) > 1e-3  # 1o = cross product


def test_degree_weights_scale_each_output_irrep(x64):
    k1, k2 = jax.random.split(jax.random.PRNGKey(2))
    x = e3nn.normal(e3nn.s2_irreps(2), k1, (3,), dtype=jnp.float64)
    out = e3nn.Irreps("0e + 1e + 2e + 3o")
    w = jnp.asarray([2.0, -1.0, 0.5, 3.0])
    z = mx.matrix_tp(x, x, out)
    zw = mx.matrix_tp(x, x, out, weights=w)
    for k, (zc, zwc) in enumerate(zip(z.chunks, zw.chunks, strict=True)):
        np.testing.assert_allclose(np.asarray(zwc), float(w[k]) * np.asarray(zc), atol=1e-12)
    with pytest.raises(ValueError, match="number of output irreps"):
        mx.matrix_tp(x, x, out, weights=jnp.ones(3))
