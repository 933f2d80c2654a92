"""Train/validation split by material: complete, disjoint, groups intact, no orphan elements."""

from __future__ import annotations

import numpy as np

from facet.data.batch import Graph
from facet.train.data import elements_missing, split_by_group


def _g(key, numbers):
    n = len(numbers)
    return Graph(np.zeros((n, 3)), np.asarray(numbers), np.eye(3), np.ones(3, bool),
                 np.zeros(0, int), np.zeros(0, int), np.zeros((0, 3)), energy=-1.0, key=key)


def test_split_by_material_keeps_every_element_in_training():
    rng = np.random.default_rng(0)
    graphs = []
    for m in range(30):
        # material 29 is the only one with element 92: it must stay in training
        els = [92, 8] if m == 29 else rng.choice([1, 6, 8, 14], 2, replace=False).tolist()
        graphs += [_g(f"mp-{m}/{f}", els) for f in range(int(rng.integers(1, 6)))]
    for seed in range(5):
        train, val = split_by_group(graphs, 0.3, seed)
        assert sorted(g.key for g in train + val) == sorted(g.key for g in graphs)
        assert not {g.key.split("/")[0] for g in train} & {g.key.split("/")[0] for g in val}
        assert elements_missing(train, val) == []
        assert all(g.key.split("/")[0] != "mp-29" for g in val)
        assert 0.3 * len(graphs) <= len(val) < 0.3 * len(graphs) + 6
    assert elements_missing([_g("a/0", [1])], [_g("b/0", [1, 3])]) == [3]
