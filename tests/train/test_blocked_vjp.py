"""The blocked message pass's custom reverse pass (tensorproducts.edge._blocked_sum) computes
what plain autodiff of the checkpointed scan computed before it: in float64, the training loss
and its parameter gradients (second order: forces and stress are in the loss) to 1e-10 and the
forces and stress to 1e-12, for the fused cg-dense kernel and for a variant without a kernel,
in several edge blocks with a padded last block; and both equal the one-pass message pass. The
same holds between cg-dense's closed contractions and its earlier per-path reverse rule."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tensorproducts.cg_dense_edge as tp_cg
import tensorproducts.edge as tp_edge
from tensorproducts import cg_edge_rule, edge_blocking

BLOCK = 48  # 1024 padded edges: 21 full blocks and a padded last one


def _autodiff_sum_over_edges(messages, edge_arrays, receivers, num_nodes):
    """The blocked pass as it was before its custom reverse pass: a scan over zero-padded
    blocks with a checkpointed body, differentiated by plain autodiff."""
    e = receivers.shape[0]
    block = tp_edge.edge_block_size(e)
    if not block:
        return jax.ops.segment_sum(messages(*edge_arrays), receivers, num_segments=num_nodes)
    nb = -(-e // block)

    def padded(a):
        a = jnp.pad(a, [(0, nb * block - e)] + [(0, 0)] * (a.ndim - 1))
        return a.reshape(nb, block, *a.shape[1:])

    def body(acc, blk):
        *arrays, rec = blk
        return acc.at[rec].add(messages(*arrays)), None

    probe = jax.eval_shape(messages, *(a[:1] for a in edge_arrays))
    acc0 = jnp.zeros((num_nodes, *probe.shape[1:]), probe.dtype)
    blocks = tuple(padded(a) for a in (*edge_arrays, receivers))
    return jax.lax.scan(jax.checkpoint(body), acc0, blocks)[0]


def _setup(product, toy_data, **overrides):
    import facet
    from facet.physics import predict
    from facet.train.batching import Budget, EpochBatcher
    from facet.train.config import LossSection
    from facet.train.step import make_loss_fn, split_model

    train, _ = toy_data
    config = dict(channels=8, num_layers=2, mixer_hidden=8, residual_init=1.0, cutoff=4.0,
                  product=product) | overrides
    model = facet.create_model("facet-s", seed=2, dtype="float64", **config)
    graphdef, params, rest = split_model(model)
    loss_fn, _ = make_loss_fn(graphdef, LossSection(energy_weight=1.0, forces_weight=10.0,
                                                    stress_weight=1.0, energy_kind="huber",
                                                    forces_kind="huber", stress_kind="huber",
                                                    huber_delta=0.01))
    batch = EpochBatcher(train, Budget(64, 1024, 6), seed=3, dtype=np.float64).local_batch(0, 0)
    assert int(batch.edge_mask.sum()) > 4 * BLOCK

    def run():  # fresh jits: traced with the blocking and reverse pass in force at the call
        from flax import nnx

        def efs(p, b):
            def one(g):
                out = predict(nnx.merge(graphdef, p, rest), g)
                return out.forces, out.stress

            return jax.vmap(one)(b)

        grad = jax.jit(jax.value_and_grad(lambda p, b: loss_fn(p, rest, b)[0]))
        return grad(params, batch), jax.jit(efs)(params, batch)

    return run


def _check_equal(result, reference):
    (loss, grads), (forces, stress) = result
    (loss_r, grads_r), (forces_r, stress_r) = reference
    leaves, leaves_r = jax.tree_util.tree_leaves(grads), jax.tree_util.tree_leaves(grads_r)
    assert float(loss_r) > 1e-3 and max(float(np.max(np.abs(g))) for g in leaves_r) > 1e-3
    assert float(np.max(np.abs(forces_r))) > 1e-2 and float(np.max(np.abs(stress_r))) > 1e-4
    np.testing.assert_allclose(float(loss), float(loss_r), rtol=1e-10)
    for a, b in zip(leaves, leaves_r, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-10 * max(1.0, float(np.max(np.abs(b)))))
    np.testing.assert_allclose(forces, forces_r, rtol=0, atol=1e-12)
    np.testing.assert_allclose(stress, stress_r, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    "product", ["cg-dense", pytest.param("gaunt-grid", marks=pytest.mark.slow)]
)
def test_custom_reverse_pass_equals_autodiff_of_the_scan(product, toy_data, x64, monkeypatch):
    """The fused kernel (cg-dense) and a weight-free variant through the generic product."""
    run = _setup(product, toy_data)
    calls = []

    def autodiff(*args):
        calls.append(1)
        return _autodiff_sum_over_edges(*args)

    with edge_blocking(BLOCK):
        new = run()
        with monkeypatch.context() as m:
            for module in (tp_edge, tp_cg):
                m.setattr(module, "sum_over_edges", autodiff)
            before = run()
    assert len(calls) >= 2  # the reference did run, in every message pass traced
    _check_equal(new, before)
    with edge_blocking(0):
        _check_equal(new, run())


@pytest.mark.slow
def test_blocked_so2_training_gradients_are_finite_and_equal_one_pass(toy_data, x64):
    """so2 in blocks: the rows filling the last block used to be zeros, whose edge frame
    (``atan2(0, 0)``) made the parameter gradients NaN (the one-pass gradients were finite)."""
    run = _setup("so2", toy_data)
    with edge_blocking(BLOCK):
        blocked = run()
    with edge_blocking(0):
        _check_equal(blocked, run())


@pytest.mark.parametrize("lmax, pseudo", [(3, True), (2, False)], ids=["facet-m-layout", "facet-s"])
def test_closed_cg_rule_equals_the_per_path_rule(lmax, pseudo, toy_data, x64, monkeypatch):
    """cg-dense's product differentiated through its three closed contractions (today) computes
    what its earlier reverse rule (one batched dot per path, differentiated by plain autodiff)
    computed: training loss and parameter gradients to 1e-10, forces and stress to 1e-12, with
    facet-m's irreps (l <= 3, both parities) and facet-s's."""
    run = _setup("cg-dense", toy_data, lmax=lmax, pseudo=pseudo)
    calls = []
    paths = tp_cg.cg_edge_product_paths

    def counted(*args):
        calls.append(1)
        return paths(*args)

    with edge_blocking(BLOCK):
        new = run()
        with monkeypatch.context() as m, cg_edge_rule("paths"):
            m.setattr(tp_cg, "cg_edge_product_paths", counted)
            before = run()
    assert len(calls) >= 2  # the earlier rule did run, in every message pass traced
    _check_equal(new, before)
