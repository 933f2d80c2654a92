"""The fused channel-wise CG edge product (facet.nn.edge_product) is the same function as the
generic ``cg-dense`` path, in values and gradients, equivariant on its own, and leaves the model's
parameter layout and energies unchanged."""

from __future__ import annotations

import e3nn_jax as e3nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from model_cases import batch_of, periodic_cell, random_rotation

import facet
from facet.nn import edge_product
from facet.nn.linear import feature_irreps, natural_irreps
from facet.nn.message import MessageProduct
from facet.physics import predict

LAYOUTS = [
    pytest.param(lmax, pseudo, first, id=f"l{lmax}-{'pseudo' if pseudo else 'natural'}-{tag}")
    for lmax in (1, 2, 3)
    for pseudo in (False, True)
    for first, tag in ((True, "first"), (False, "hidden"))
]


def _product(lmax, pseudo, first):
    irreps_in = e3nn.Irreps("0e") if first else feature_irreps(lmax, pseudo)
    return MessageProduct("cg-dense", irreps_in, natural_irreps(lmax), feature_irreps(lmax, pseudo))


def _inputs(msg, n_edge=9, channels=4, seed=0):
    rng = np.random.default_rng(seed)
    vec = jnp.asarray(rng.normal(size=(n_edge, 3)))
    x = jnp.asarray(rng.normal(size=(n_edge, channels, msg.irreps_in.dim)))
    w = jnp.asarray(rng.normal(size=(n_edge, channels, msg.num_radial)))
    proj = jnp.asarray(rng.normal(size=(n_edge, channels, msg.irreps_out.dim)))
    return vec, x, w, proj


def _sh(msg, vec):
    return e3nn.spherical_harmonics(
        msg.irreps_sh, vec, normalize=True, normalization="component"
    ).array


@pytest.mark.parametrize("lmax, pseudo, first", LAYOUTS)
def test_fused_equals_generic_with_gradients(lmax, pseudo, first, x64):
    msg = _product(lmax, pseudo, first)
    assert msg.fused() is not None
    vec, x, w, proj = _inputs(msg)

    def loss(path):
        def f(vec, x, w):
            return jnp.sum(path(x, _sh(msg, vec), w) * proj)

        return jax.jit(jax.value_and_grad(f, argnums=(0, 1, 2)))

    (v_f, g_f), (v_g, g_g) = loss(msg)(vec, x, w), loss(msg.generic)(vec, x, w)
    scale = float(jnp.max(jnp.abs(msg.generic(x, _sh(msg, vec), w))))
    assert scale > 1.0  # non-trivial outputs
    np.testing.assert_allclose(msg(x, _sh(msg, vec), w), msg.generic(x, _sh(msg, vec), w), 0, 1e-12)
    assert abs(float(v_f - v_g)) <= 1e-12 * max(1.0, abs(float(v_g)))
    for name, a, b in zip(("positions", "x", "weights"), g_f, g_g, strict=True):
        assert float(jnp.max(jnp.abs(b))) > 1e-3, name  # the gradient is not trivially zero
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12, err_msg=name)
    # The channels-minor entry point used by the model is the same function.
    sw = lambda a: jnp.swapaxes(a, -1, -2)  # noqa: E731
    np.testing.assert_allclose(
        sw(msg.channels_minor(sw(x), _sh(msg, vec), sw(w))), msg(x, _sh(msg, vec), w), 0, 1e-13
    )


@pytest.mark.parametrize("lmax, pseudo", [(2, False), (3, True)])
@pytest.mark.parametrize("det", [1, -1], ids=["rotation", "rotoinversion"])
def test_fused_product_is_equivariant(lmax, pseudo, det, x64):
    """out(D_in x, Y(R r), w) = D_out out(x, Y(r), w) for proper and improper R."""
    msg = _product(lmax, pseudo, first=False)
    vec, x, w, _ = _inputs(msg, seed=3)
    rot = det * random_rotation(7)
    d_in = jnp.asarray(msg.irreps_in.D_from_matrix(jnp.asarray(rot)))
    d_out = jnp.asarray(msg.irreps_out.D_from_matrix(jnp.asarray(rot)))
    out = msg(x, _sh(msg, vec), w)
    out_rot = msg(x @ d_in.T, _sh(msg, vec @ rot.T), w)
    np.testing.assert_allclose(out_rot, out @ d_out.T, rtol=0, atol=1e-12)
    assert float(jnp.max(jnp.abs(out_rot - out))) > 1e-2  # the rotation did act


def test_plan_rejects_unreachable_output():
    with pytest.raises(ValueError, match="unreachable"):
        edge_product.cg_edge_plan("0e", "0e + 1o", "0e + 2e")


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
def test_model_energy_forces_stress_unchanged(overrides, monkeypatch, x64):
    """The fused path changes no parameter and no number: a model (same seed, so the same
    parameters a checkpoint of the generic code would hold) predicts the same energies, forces
    and stress with the fused product as with the generic registry product."""
    model = facet.create_model(
        "facet-s", seed=2, dtype="float64", residual_init=1.0, product="cg-dense", **overrides
    )
    atoms = periodic_cell()
    batch = batch_of([atoms], np.float64, model.cutoff, pad=(8, 256, 2))
    fused = nnx.jit(predict)(model, batch)
    monkeypatch.delitem(edge_product.EDGE_PRODUCTS, "cg-dense")
    assert all(b.msg.fused() is None for b in model.blocks)
    generic = nnx.jit(predict)(model, batch)
    assert float(jnp.max(jnp.abs(generic.forces))) > 1e-2
    for key in ("energy", "node_energies", "forces", "stress"):
        a, b = getattr(fused, key), getattr(generic, key)
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12, err_msg=key)


def test_radial_channels_minor_permutes_columns(x64):
    """RadialMap.channels_minor gives the channels-major weights transposed (also with a
    hidden layer), so the stored parameter layout is untouched."""
    model = facet.create_model("facet-s", seed=0, dtype="float64", channels=6, radial_mlp=(5,))
    block = model.blocks[1]
    feats = jnp.asarray(np.random.default_rng(1).normal(size=(13, model.config.num_radial)))
    p = block.msg.num_radial
    ref = block.radial(feats).reshape(13, 6, p)
    np.testing.assert_array_equal(block.radial.channels_minor(feats, 6), jnp.swapaxes(ref, 1, 2))


@pytest.mark.slow
def test_training_gradients_unchanged(monkeypatch, x64):
    """Second-order: parameter gradients of a force/stress/energy loss are the same with the
    fused product as with the generic one (what training differentiates)."""
    model = facet.create_model("facet-s", seed=2, dtype="float64", residual_init=1.0, channels=6)
    batch = batch_of([periodic_cell()], np.float64, model.cutoff, pad=(8, 256, 2))

    def loss(m):
        p = predict(m, batch)
        return jnp.sum(p.forces**2) + jnp.sum(p.stress**2) + jnp.sum(p.energy**2)

    fused = nnx.jit(nnx.grad(loss))(model)
    monkeypatch.delitem(edge_product.EDGE_PRODUCTS, "cg-dense")
    generic = nnx.jit(nnx.grad(loss))(model)
    for a, b in zip(
        jax.tree_util.tree_leaves(fused), jax.tree_util.tree_leaves(generic), strict=True
    ):
        scale = max(1.0, float(jnp.max(jnp.abs(b))))
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12 * scale)


@pytest.mark.parametrize(
    "lmax, pseudo, first", [(1, True, False), (2, False, False), (3, True, True)]
)
def test_fused_second_order_equals_generic(lmax, pseudo, first, x64):
    """The fused product's hand-written reverse rule is itself differentiable: the gradient of a
    function of first derivatives (what a force loss needs) matches the generic product."""
    msg = _product(lmax, pseudo, first)
    vec, x, w, proj = _inputs(msg, seed=5)

    def second(path):
        def f(vec, x, w):
            return jnp.sum(path(x, _sh(msg, vec), w) * proj)

        def g(vec, x, w):
            gv, gx, gw = jax.grad(f, argnums=(0, 1, 2))(vec, x, w)
            return jnp.sum(gv**2) + jnp.sum(jnp.sin(gx)) + jnp.sum(gw * gw * gw)

        return jax.jit(jax.grad(g, argnums=(0, 1, 2)))(vec, x, w)

    for name, a, b in zip(
        ("positions", "x", "weights"), second(msg), second(msg.generic), strict=True
    ):
        assert float(jnp.max(jnp.abs(b))) > 1e-3, name
        scale = max(1.0, float(jnp.max(jnp.abs(b))))
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12 * scale, err_msg=name)
