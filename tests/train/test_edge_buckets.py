"""Edge buckets (data.edge_buckets): each training batch is padded to the smallest fitted edge
count that holds it. The packs are unchanged, and the loss and its parameter gradients (second
order: forces and stress in the loss) equal those at the full budget in float64."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from facet.train.batching import Budget, EpochBatcher, edge_pads
from tensorproducts import edge_blocking


def test_edge_pads_are_rounded_quantiles_up_to_the_budget():
    totals = np.arange(1000, 3001)
    assert edge_pads(totals, 3584, 1) == (3584,)
    assert edge_pads(totals, 3584, 2) == (2048, 3584)  # median 2000 -> 2048
    assert edge_pads(totals, 3584, 4) == (1536, 2048, 2560, 3584)
    assert edge_pads(totals, 2000, 4) == (1536, 2000)  # clipped to the budget, deduplicated
    with pytest.raises(ValueError, match="edge buckets"):
        edge_pads(totals, 3584, 0)


def test_same_packs_smaller_padding(toy_data):
    train, _ = toy_data
    budget = Budget(64, 1024, 6)
    one = EpochBatcher(train, budget, seed=3, edge_buckets=1)
    three = EpochBatcher(train, budget, seed=3, edge_buckets=3)
    assert len(three.edge_pads) >= 2 and three.edge_pads[-1] == 1024
    padded_one = padded_three = 0
    for epoch in (0, 1):
        for k in range(one.steps_in_epoch(epoch)):
            idx1, idx3 = one.global_indices(epoch, k), three.global_indices(epoch, k)
            assert all(np.array_equal(a, b) for a, b in zip(idx1, idx3, strict=True))
            b1, b3 = one.local_batch(epoch, k), three.local_batch(epoch, k)
            e = b3.edge_mask.shape[-1]
            assert e in three.edge_pads and int(b3.edge_mask.sum()) <= e
            assert e == min(p for p in three.edge_pads if p >= int(b3.edge_mask.sum()))
            for name in ("positions", "numbers", "node_mask", "energy", "forces", "stress"):
                np.testing.assert_array_equal(getattr(b1, name), getattr(b3, name))
            padded_one += b1.edge_mask.shape[-1]
            padded_three += e
    assert padded_three < 0.9 * padded_one


def test_loss_and_gradients_do_not_depend_on_the_edge_padding(toy_data, x64):
    """facet-s (reduced), float64: loss and parameter gradients of the training loss on the same
    pack padded to its bucket and to the full budget (blocked message pass in both: 16-edge
    blocks, so the two pads run different numbers of blocks)."""
    import facet
    from facet.train.config import LossSection
    from facet.train.step import make_loss_fn, split_model

    train, _ = toy_data
    model = facet.create_model("facet-s", seed=2, dtype="float64", channels=8, num_layers=2,
                               mixer_hidden=8, residual_init=1.0, cutoff=4.0)
    graphdef, params, rest = split_model(model)
    loss_fn, _ = make_loss_fn(graphdef, LossSection(energy_weight=1.0, forces_weight=10.0,
                                                    stress_weight=1.0, energy_kind="huber",
                                                    forces_kind="huber", stress_kind="huber",
                                                    huber_delta=0.01))
    grad = jax.jit(jax.value_and_grad(lambda p, b: loss_fn(p, rest, b)[0]))
    budget = Budget(64, 1024, 6)
    one = EpochBatcher(train, budget, seed=3, edge_buckets=1, dtype=np.float64)
    three = EpochBatcher(train, budget, seed=3, edge_buckets=3, dtype=np.float64)
    k = next(k for k in range(three.steps_in_epoch(0)) if three.edge_pad(0, k) < 1024)
    with edge_blocking(16):  # fresh jit: traced here with 16-edge blocks
        (l1, g1) = grad(params, one.local_batch(0, k))
        (l3, g3) = grad(params, three.local_batch(0, k))
    assert float(l1) > 1e-3
    np.testing.assert_allclose(float(l3), float(l1), rtol=1e-10)
    leaves1, leaves3 = jax.tree_util.tree_leaves(g1), jax.tree_util.tree_leaves(g3)
    assert max(float(np.max(np.abs(g))) for g in leaves1) > 1e-3
    for a, b in zip(leaves3, leaves1, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-10 * max(1.0, float(np.max(np.abs(b)))))


def test_hosts_agree_on_the_padding_of_a_global_step(toy_data):
    """Two hosts (one device slot each) pad the shards of every global step alike."""
    train, _ = toy_data
    budget = Budget(64, 1024, 6)
    hosts = [EpochBatcher(train, budget, seed=3, n_devices=2, device_slots=[s], edge_buckets=3)
             for s in (0, 1)]
    assert hosts[0].edge_pads == hosts[1].edge_pads and len(hosts[0].edge_pads) >= 2
    sizes = set()
    for k in range(hosts[0].steps_in_epoch(0)):
        b0, b1 = (h.local_batch(0, k) for h in hosts)
        assert b0.edge_mask.shape == b1.edge_mask.shape
        need = max(int(b0.edge_mask.sum()), int(b1.edge_mask.sum()))
        assert b0.edge_mask.shape[-1] == min(p for p in hosts[0].edge_pads if p >= need)
        sizes.add(b0.edge_mask.shape[-1])
    assert len(sizes) >= 2
