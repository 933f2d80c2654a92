"""The model's message product goes through ``tensorproducts`` (issue 19): the fused edge kernel
is the registered variant's own ``edge_kernel``, reached through one call path, and no layout or
blocking switch sits in the model's API or in the environment."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from model_cases import batch_of, periodic_cell

import facet
import tensorproducts
from facet.physics import predict


def _small(**kw):
    return facet.create_model("facet-s", seed=1, dtype="float64", channels=4, num_layers=2, **kw)


def test_cg_dense_model_runs_the_registered_variants_kernel(monkeypatch, x64):
    """Replacing the registered ``cg-dense`` kernel by a spy shows the model calls it, once per
    block: no second registry stands between the model and ``tensorproducts``."""
    spec = tensorproducts.get("cg-dense")
    assert spec.edge_kernel is not None
    calls = []

    def spy(product, *args):
        calls.append(product.name)
        return spec.edge_kernel(product, *args)

    monkeypatch.setitem(
        tensorproducts.REGISTRY, "cg-dense", dataclasses.replace(spec, edge_kernel=spy)
    )
    model = _small()
    batch = batch_of([periodic_cell()], np.float64, model.cutoff, pad=(8, 256, 2))
    predict(model, batch)
    assert calls == ["cg-dense", "cg-dense"]


def test_the_model_reads_no_environment_switch(monkeypatch, x64):
    """The old trace-time variable ``FACET_EDGE_BLOCK`` no longer reaches the model (it raised
    on a non-integer value)."""
    monkeypatch.setenv("FACET_EDGE_BLOCK", "many")
    model = _small()
    batch = batch_of([periodic_cell()], np.float64, model.cutoff, pad=(8, 256, 2))
    assert np.isfinite(float(nnx.jit(predict)(model, batch).energy[0]))


@pytest.mark.parametrize("name", ["channels_minor", "weights_channels_minor"])
def test_no_layout_switch_in_the_model_api(name):
    from facet.nn.interaction import RadialMap
    from facet.nn.message import MessageProduct

    assert not hasattr(RadialMap, name) and not hasattr(MessageProduct, name)


def _without_kernel(monkeypatch):
    """Remove ``cg-dense``'s fused kernel from the registry: the reference runs instead."""
    spec = tensorproducts.get("cg-dense")
    monkeypatch.setitem(
        tensorproducts.REGISTRY, "cg-dense", dataclasses.replace(spec, edge_kernel=None)
    )


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param(dict(channels=6, lmax=2), id="facet-s-layout"),
        pytest.param(
            dict(channels=5, lmax=3, pseudo=True, radial_mlp=(7,)),
            id="l3-pseudo-mlp",
            marks=pytest.mark.slow,
        ),
    ],
)
def test_model_energy_forces_stress_kernel_equals_reference(overrides, monkeypatch, x64):
    """The fused kernel changes no parameter and no number: the same model predicts the same
    energies, forces and stress with ``cg-dense``'s kernel as with the contract's reference."""
    model = facet.create_model(
        "facet-s", seed=2, dtype="float64", residual_init=1.0, product="cg-dense", **overrides
    )
    batch = batch_of([periodic_cell()], np.float64, model.cutoff, pad=(8, 256, 2))
    fused = nnx.jit(predict)(model, batch)
    _without_kernel(monkeypatch)
    reference = nnx.jit(predict)(model, batch)
    assert float(jnp.max(jnp.abs(reference.forces))) > 1e-2
    for key in ("energy", "node_energies", "forces", "stress"):
        a, b = getattr(fused, key), getattr(reference, key)
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12, err_msg=key)


@pytest.mark.slow
def test_training_gradients_kernel_equals_reference(monkeypatch, x64):
    """Second order: parameter gradients of a force/stress/energy loss (what training
    differentiates) are the same with the kernel as with the reference."""
    model = facet.create_model("facet-s", seed=2, dtype="float64", residual_init=1.0, channels=6)
    batch = batch_of([periodic_cell()], np.float64, model.cutoff, pad=(8, 256, 2))

    def loss(m):
        p = predict(m, batch)
        return jnp.sum(p.forces**2) + jnp.sum(p.stress**2) + jnp.sum(p.energy**2)

    fused = nnx.jit(nnx.grad(loss))(model)
    _without_kernel(monkeypatch)
    reference = nnx.jit(nnx.grad(loss))(model)
    for a, b in zip(
        jax.tree_util.tree_leaves(fused), jax.tree_util.tree_leaves(reference), strict=True
    ):
        scale = max(1.0, float(jnp.max(jnp.abs(b))))
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12 * scale)


def test_radial_factors_are_the_radial_map(x64):
    """``RadialMap.factors`` (basis, matrix) multiply back to the radial map's weights (also with
    a hidden layer): the stored parameter layout is untouched."""
    model = facet.create_model("facet-s", seed=0, dtype="float64", channels=6, radial_mlp=(5,))
    block = model.blocks[1]
    feats = jnp.asarray(np.random.default_rng(1).normal(size=(13, model.config.num_radial)))
    basis, w = block.radial.factors(feats, 6)
    assert w.shape == (5, 6, block.msg.num_radial)
    np.testing.assert_allclose(
        jnp.einsum("ek,kcp->ecp", basis, w), block.radial(feats).reshape(13, 6, -1), 0, 1e-13
    )
