"""Train/validation split by material: complete, disjoint, groups intact, no orphan elements."""

from __future__ import annotations

import numpy as np
import pytest

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


def test_split_by_frame_mixes_materials():
    graphs = [_g(f"mp-{m}/{f}", [1, 8]) for m in range(3) for f in range(10)]
    train, val = split_by_group(graphs, 0.2, 0, by="frame")
    assert len(val) == 6 and len(train) == 24
    assert len({g.key.split("/")[0] for g in val}) > 1
    assert sorted(g.key for g in train + val) == sorted(g.key for g in graphs)


def test_preprocessed_directory_is_read_lazily_with_its_splits(tmp_path):
    """A preprocessed directory trains on its own train/val splits through a lazy source whose
    sizes match the graphs and whose epoch order is a shard-blocked permutation."""
    from pathlib import Path

    from facet.data.preprocess import PreprocessConfig, preprocess
    from facet.train.batching import Budget, EpochBatcher
    from facet.train.config import DataSection
    from facet.train.data import ShardedGraphs, load_training_data

    src = Path(__file__).parents[2] / "data" / "sample" / "mptrj_sample.json"
    preprocess(src, tmp_path / "pp", PreprocessConfig(cutoff=4.0, val_fraction=0.2,
                                                      shard_size=40), progress=False)
    train, val = load_training_data(DataSection(train=[str(tmp_path / "pp")]), 4.0)
    assert isinstance(train, ShardedGraphs) and len(train) + len(val) == 286 and len(val)
    k = len(train) // 2
    assert train[k].n_node == train.n_nodes[k] and train[k].n_edge == train.n_edges[k]
    order = train.order(0, 1)
    assert sorted(order.tolist()) == list(range(len(train)))
    # shard-blocked: the order switches shard (40 frames each) only a few times
    assert np.count_nonzero(np.diff(order // 40)) == len(train._offsets) - 2
    b = EpochBatcher(train, Budget(200, 20000, 9), seed=0)
    seen = np.concatenate([i for s in range(b.steps_in_epoch(0)) for i in b.global_indices(0, s)])
    assert sorted(seen.tolist()) == list(range(len(train)))
    with pytest.raises(ValueError, match="cutoff 4.0 A but the model needs 5.0"):
        load_training_data(DataSection(train=[str(tmp_path / "pp")]), 5.0)
