"""The blocked message pass (facet.nn.interaction.edge_block_size) computes the same function as
the single pass: energies, forces, stress and second-order training gradients agree in float64."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from model_cases import batch_of, periodic_cell

import facet
from facet.nn.interaction import MIN_BLOCKED_EDGES, edge_block_size
from facet.physics import predict


def _model(**kw):
    return facet.create_model(
        "facet-s", seed=3, dtype="float64", residual_init=1.0, channels=6, **kw
    )


def _both(monkeypatch, fn):
    """``fn()`` with 24-edge blocks (not a divisor of the 256 padded edges: the last block is
    padded) and with blocking off; fresh jits so each traces with its setting."""
    monkeypatch.setenv("FACET_EDGE_BLOCK", "24")
    blocked = fn()
    monkeypatch.setenv("FACET_EDGE_BLOCK", "0")
    single = fn()
    return blocked, single


@pytest.mark.parametrize("radial_mlp", [(), (5,)], ids=["spline", "mlp"])
def test_blocked_messages_equal_single_pass(radial_mlp, monkeypatch, x64):
    model = _model(radial_mlp=radial_mlp)
    batch = batch_of([periodic_cell()], np.float64, model.cutoff, pad=(8, 256, 2))
    assert int(batch.edge_mask.sum()) > 48  # several real blocks, plus padding edges
    blocked, single = _both(monkeypatch, lambda: nnx.jit(predict)(model, batch))
    assert float(jnp.max(jnp.abs(single.forces))) > 1e-2
    assert float(jnp.max(jnp.abs(single.stress))) > 1e-4
    for key in ("energy", "node_energies", "forces", "stress"):
        a, b = getattr(blocked, key), getattr(single, key)
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12, err_msg=key)


def test_blocked_training_gradients_equal_single_pass(monkeypatch, x64):
    """Second order (the parameter gradient of a force/stress/energy loss, what training
    differentiates) goes through the checkpointed scan unchanged."""
    model = _model()
    batch = batch_of([periodic_cell()], np.float64, model.cutoff, pad=(8, 256, 2))

    def loss(m):
        p = predict(m, batch)
        return jnp.sum(p.forces**2) + jnp.sum(p.stress**2) + jnp.sum(p.energy**2)

    blocked, single = _both(monkeypatch, lambda: nnx.jit(nnx.grad(loss))(model))
    leaves_b, leaves_s = jax.tree_util.tree_leaves(blocked), jax.tree_util.tree_leaves(single)
    assert max(float(jnp.max(jnp.abs(g))) for g in leaves_s) > 1e-3
    for a, b in zip(leaves_b, leaves_s, strict=True):
        scale = max(1.0, float(jnp.max(jnp.abs(b))))
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-11 * scale)


def test_edge_block_size_choice(monkeypatch):
    monkeypatch.delenv("FACET_EDGE_BLOCK", raising=False)
    on_cpu = jax.default_backend() == "cpu"
    assert edge_block_size(MIN_BLOCKED_EDGES - 8) == 0  # small graphs: one pass
    assert (edge_block_size(4 * MIN_BLOCKED_EDGES) > 0) == on_cpu
    monkeypatch.setenv("FACET_EDGE_BLOCK", "0")
    assert edge_block_size(10_000) == 0
    monkeypatch.setenv("FACET_EDGE_BLOCK", "32")
    assert edge_block_size(100) == 32
    assert edge_block_size(32) == 0  # one block would be the whole pass
    monkeypatch.setenv("FACET_EDGE_BLOCK", "many")
    with pytest.raises(ValueError, match="FACET_EDGE_BLOCK"):
        edge_block_size(100)
