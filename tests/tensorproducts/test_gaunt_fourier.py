"""gaunt-fourier: exact tables, known values, agreement with the exact Gaunt sum and gaunt-grid.

The shared contract (test_contract.py) already checks O(3) equivariance, cg-dense agreement,
gradients, dtypes and broadcasting; here: the maths specific to the 2D Fourier route.
"""

from __future__ import annotations

import math

import e3nn_jax as e3nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tensorproducts
from tensorproducts import _irreps_io as io
from tensorproducts import gaunt_fourier as gf
from tensorproducts.clebsch_gordan import real_gaunt


def _exact_gaunt(x: e3nn.IrrepsArray, y: e3nn.IrrepsArray, out: e3nn.Irreps) -> np.ndarray:
    """sqrt(4 pi) * sum over paths of the real Gaunt coefficients (NumPy float64)."""
    blocks = []
    for _, i3 in out:
        acc = np.zeros(x.shape[:-1] + (i3.dim,))
        for (_, i1), a in zip(x.irreps, x.chunks, strict=True):
            for (_, i2), b in zip(y.irreps, y.chunks, strict=True):
                if i1.p * i2.p != i3.p or (i1.l + i2.l + i3.l) % 2:
                    continue
                g = math.sqrt(4 * math.pi) * real_gaunt(i1.l, i2.l, i3.l)
                acc = acc + np.einsum("...i,...j,ijk->...k", a[..., 0, :], b[..., 0, :], g)
        blocks.append(acc)
    return np.concatenate(blocks, axis=-1)


def test_real_sh_matches_e3nn(x64):
    r = np.random.default_rng(0).normal(size=(20, 3))
    ours = io.real_sh(6, r)
    ref = e3nn.spherical_harmonics(e3nn.s2_irreps(6), jnp.asarray(r), normalize=True).array
    np.testing.assert_allclose(ours, np.asarray(ref), atol=1e-12)


def test_fourier_table_reproduces_sh_and_undersampling_fails():
    lmax = 4
    rng = np.random.default_rng(1)
    beta, alpha = rng.uniform(0, np.pi, 15), rng.uniform(0, 2 * np.pi, 15)
    xyz = np.stack([np.sin(beta) * np.sin(alpha), np.cos(beta), np.sin(beta) * np.cos(alpha)], -1)
    u = np.arange(-lmax, lmax + 1)
    phase = np.exp(
        1j * (u[None, :, None] * beta[:, None, None] + u[None, None, :] * alpha[:, None, None])
    )

    def evaluate(table):
        return np.einsum("duv,puv->pd", table, phase).real

    exact = evaluate(gf.sh_fourier_table(lmax))
    np.testing.assert_allclose(exact, io.real_sh(lmax, xyz), atol=1e-12)
    # negative control: a 2L x 2L torus grid aliases degree-L harmonics
    aliased = evaluate(gf.sh_fourier_table(lmax, n=2 * lmax))
    assert np.abs(aliased - io.real_sh(lmax, xyz)).max() > 0.1


@pytest.mark.parametrize("convolution", ["fft", "direct"])
def test_equals_exact_gaunt_sum(convolution, x64):
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    x = e3nn.normal(e3nn.s2_irreps(3), k1, (4,), dtype=jnp.float64)
    y = e3nn.normal("0e + 1o + 2e + 2o", k2, (4,), dtype=jnp.float64)  # mixed classes in y
    out = e3nn.Irreps("0e + 0o + 1o + 1e + 2e + 2o + 3o + 3e + 4e + 4o + 5o + 5e")
    z = gf.gaunt_fourier(x, y, out, convolution=convolution)
    ref = _exact_gaunt(x, y, out)
    np.testing.assert_allclose(np.asarray(z.array), ref, atol=1e-12 * np.abs(ref).max())


def test_equals_gaunt_grid(x64):
    k1, k2 = jax.random.split(jax.random.PRNGKey(3))
    x = e3nn.normal("0o + 1e + 2o + 3e", k1, (5,), dtype=jnp.float64)  # pseudo-parity class
    y = e3nn.normal(e3nn.s2_irreps(2), k2, (5,), dtype=jnp.float64)
    out = e3nn.Irreps("0o + 1e + 2o + 3e + 4o + 5e")
    z = gf.gaunt_fourier(x, y, out)
    ref = tensorproducts.get("gaunt-grid").apply(x, y, out)
    np.testing.assert_allclose(np.asarray(z.array), np.asarray(ref.array), atol=1e-12)


def test_known_values(x64):
    k1, k2 = jax.random.split(jax.random.PRNGKey(4))
    x = e3nn.normal(e3nn.s2_irreps(4), k1, (3,), dtype=jnp.float64)
    one = e3nn.IrrepsArray("0e", jnp.ones((3, 1), jnp.float64))
    # multiplying by the constant function 1 is the identity
    z = gf.gaunt_fourier(x, one, x.irreps)
    np.testing.assert_allclose(np.asarray(z.array), np.asarray(x.array), atol=1e-13)
    # two pseudo-vectors: the mean of f1 f2 over the sphere is their dot product, and a
    # pseudo-scalar output is exactly zero (the research code mislabels these parities)
    a = e3nn.normal("1e", k1, (3,), dtype=jnp.float64)
    b = e3nn.normal("1e", k2, (3,), dtype=jnp.float64)
    z = gf.gaunt_fourier(a, b, "0e + 0o")
    np.testing.assert_allclose(z.array[:, 0], jnp.sum(a.array * b.array, -1), atol=1e-13)
    assert float(jnp.abs(z.array[:, 1]).max()) == 0.0


def test_clear_errors():
    x = e3nn.normal("0e + 1o", jax.random.PRNGKey(0), (2,))
    with pytest.raises(ValueError, match="no internal weights"):
        gf.gaunt_fourier(x, x, "0e", weights=jnp.ones((2, 1)))
    with pytest.raises(ValueError, match="mul_to_axis"):
        gf.gaunt_fourier(e3nn.normal("2x1o", jax.random.PRNGKey(0), (2,)), x, "0e")
    with pytest.raises(ValueError, match="unknown convolution"):
        gf.gaunt_fourier(x, x, "0e", convolution="fast")
