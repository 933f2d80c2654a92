"""Batching plan: every structure exactly once per epoch over all device slots, deterministic,
resumable from a step count, host slices consistent, empty slots contribute nothing."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from facet.train.batching import Budget, EpochBatcher, empty_batch
from facet.train.config import LossSection
from facet.train.loss import error_sums, loss_sums


def test_plan_covers_each_structure_once(toy_data):
    graphs = toy_data[0]
    budget = Budget(32, 1024, 6)
    b = EpochBatcher(graphs, budget, seed=1, n_devices=3)
    for epoch in range(3):
        seen = []
        for s in range(b.steps_in_epoch(epoch)):
            packs = b.global_indices(epoch, s)
            assert len(packs) == 3
            for idx in packs:
                assert sum(graphs[i].n_node for i in idx) + 1 <= budget.max_nodes
                assert sum(graphs[i].n_edge for i in idx) <= budget.max_edges
                assert len(idx) + 1 <= budget.max_graphs
                seen.extend(idx.tolist())
        assert sorted(seen) == list(range(len(graphs)))
    assert not np.array_equal(b.order(0), b.order(1))
    again = EpochBatcher(graphs, budget, seed=1, n_devices=3)
    assert all(np.array_equal(x, y) for x, y in zip(again.plan(2), b.plan(2), strict=True))


def test_position_and_host_slices(toy_data):
    graphs = toy_data[0]
    budget = Budget(32, 1024, 6)
    full = EpochBatcher(graphs, budget, seed=4, n_devices=2)
    n0 = full.steps_in_epoch(0)
    assert full.position(0) == (0, 0)
    assert full.position(n0) == (1, 0)
    assert full.position(n0 + 2) == (1, 2)
    assert full.total_steps(2) == n0 + full.steps_in_epoch(1)
    # two "hosts" each filling one slot build exactly the slots of the single-host batch
    hosts = [EpochBatcher(graphs, budget, seed=4, n_devices=2, device_slots=[i]) for i in (0, 1)]
    whole = full.local_batch(1, 1)
    for i, h in enumerate(hosts):
        part = h.local_batch(1, 1)
        for a, c in zip(part, whole, strict=True):
            np.testing.assert_array_equal(a[0], c[i])


def test_oversized_structure_named(toy_data):
    g = max(toy_data[0], key=lambda g: g.n_edge)
    with pytest.raises(ValueError, match=f"structure {g.key}.*data.max_edges"):
        EpochBatcher([g], Budget(64, g.n_edge - 1, 4))


def test_empty_batch_contributes_nothing():
    import jax.numpy as jnp
    from toymodel import PairModel, toy_predict

    e = jax.tree.map(jnp.asarray, empty_batch(Budget(16, 32, 4), np.float32))
    pred = toy_predict(PairModel(), e)
    sums = loss_sums(pred, e, LossSection())
    assert all(float(s) == 0 and float(c) == 0 for s, c in sums.values())
    assert all(float(v) == 0 for v in error_sums(pred, e).values())
    assert float(jnp.abs(pred.forces).sum()) == 0
