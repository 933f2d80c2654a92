"""Cache blocking over the batch (tensorproducts._blocking): the blocked product is the same
function, values and gradients, including the remainder block and broadcast leading shapes."""

from __future__ import annotations

import e3nn_jax as e3nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tensorproducts import _blocking
from tensorproducts.cg_dense import cg_dense
from tensorproducts.cg_sparse import cg_sparse
from tensorproducts.matrix import matrix_tp

IR1, IR2 = "0e + 1o + 2e + 3o", "0e + 1o + 2e + 3o"
OUT = "0e + 1o + 1e + 2e + 3o + 4e"


def test_block_size_rules():
    assert _blocking.block_size(1000, 100, budget=1 << 20) == 100  # fits: no blocking
    assert _blocking.block_size(4096, 10_000, budget=1 << 20) == 256  # 256 x 4 KiB = 1 MiB
    assert _blocking.block_size(1 << 20, 10_000, budget=1 << 20) == 64  # floor of 64 samples


def test_no_blocking_off_the_cpu(monkeypatch):
    monkeypatch.setattr(_blocking, "_on_cpu", lambda: False)
    assert _blocking.block_size(4096, 10_000, budget=1 << 20) == 10_000


def test_in_blocks_keeps_order_and_remainder():
    a = jnp.arange(1000.0).reshape(250, 4)
    out = _blocking.in_blocks(lambda x, w: x * 2 + (0 if w is None else 1), 64, a, None)
    np.testing.assert_array_equal(np.asarray(out), 2 * np.asarray(a))


@pytest.mark.parametrize("variant", [cg_dense, cg_sparse, matrix_tp], ids=lambda v: v.__name__)
def test_blocked_equals_unblocked(variant, monkeypatch, x64):
    """A batch of 3 x 70 samples (blocks of 64 and a remainder of 18) gives the values and the
    weight and input gradients of the one-pass product, in float64."""
    k = jax.random.split(jax.random.PRNGKey(3), 3)
    x = e3nn.normal(IR1, k[0], (3, 70), dtype=jnp.float64)
    y = e3nn.normal(IR2, k[1], (1, 70), dtype=jnp.float64)  # broadcast over the first axis
    out = e3nn.Irreps(OUT)
    from tensorproducts import REGISTRY

    spec = next(s for s in REGISTRY.values() if s.apply is variant)
    n_w = spec.num_weights(x.irreps, y.irreps, out)
    w = jax.random.normal(k[2], (70, n_w), dtype=jnp.float64)

    def loss(xa, w):
        z = variant(e3nn.IrrepsArray(x.irreps, xa), y, out, w).array
        return jnp.sum(jnp.sin(z)), z

    results = []
    for budget in (1 << 40, 2048):  # one pass; blocks of 64
        monkeypatch.setattr(_blocking, "BLOCK_BYTES", budget)
        (val, z), grads = jax.jit(jax.value_and_grad(loss, argnums=(0, 1), has_aux=True))(
            x.array, w
        )
        results.append((z, grads))
    (z0, g0), (z1, g1) = results
    assert z0.shape == (3, 70, out.dim)
    np.testing.assert_allclose(np.asarray(z1), np.asarray(z0), rtol=0, atol=1e-12)
    for a, b in zip(g1, g0, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=0, atol=1e-12)
