"""The blocked message pass (tensorproducts.edge.edge_block_size) computes the same function as
the single pass: energies, forces, stress and second-order training gradients of the model agree
in float64."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from model_cases import batch_of, periodic_cell

import facet
from facet.physics import predict
from tensorproducts import edge_blocking


def _model(**kw):
    return facet.create_model(
        "facet-s", seed=3, dtype="float64", residual_init=1.0, channels=6, **kw
    )


def _both(fn):
    """``fn()`` with 24-edge blocks (not a divisor of the 256 padded edges: the last block is
    padded) and with blocking off; fresh jits so each traces with its setting."""
    with edge_blocking(24):
        blocked = fn()
    with edge_blocking(0):
        single = fn()
    return blocked, single


@pytest.mark.parametrize("radial_mlp", [(), (5,)], ids=["spline", "mlp"])
def test_blocked_messages_equal_single_pass(radial_mlp, x64):
    model = _model(radial_mlp=radial_mlp)
    batch = batch_of([periodic_cell()], np.float64, model.cutoff, pad=(8, 256, 2))
    assert int(batch.edge_mask.sum()) > 48  # several real blocks, plus padding edges
    blocked, single = _both(lambda: nnx.jit(predict)(model, batch))
    assert float(jnp.max(jnp.abs(single.forces))) > 1e-2
    assert float(jnp.max(jnp.abs(single.stress))) > 1e-4
    for key in ("energy", "node_energies", "forces", "stress"):
        a, b = getattr(blocked, key), getattr(single, key)
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12, err_msg=key)


def test_blocked_training_gradients_equal_single_pass(x64):
    """Second order (the parameter gradient of a force/stress/energy loss, what training
    differentiates) goes through the checkpointed scan unchanged."""
    model = _model()
    batch = batch_of([periodic_cell()], np.float64, model.cutoff, pad=(8, 256, 2))

    def loss(m):
        p = predict(m, batch)
        return jnp.sum(p.forces**2) + jnp.sum(p.stress**2) + jnp.sum(p.energy**2)

    blocked, single = _both(lambda: nnx.jit(nnx.grad(loss))(model))
    leaves_b, leaves_s = jax.tree_util.tree_leaves(blocked), jax.tree_util.tree_leaves(single)
    assert max(float(jnp.max(jnp.abs(g))) for g in leaves_s) > 1e-3
    for a, b in zip(leaves_b, leaves_s, strict=True):
        scale = max(1.0, float(jnp.max(jnp.abs(b))))
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-11 * scale)
