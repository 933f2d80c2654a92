"""Training data: read structures from the configured paths, build graphs, split train/val.

Files are read through :mod:`facet.data.sources` (its format registry; a directory is a
preprocessed dataset); units and signs are converted once by those readers, never here.

The validation split is drawn by *group* (the material id, the part of a graph key before the
first ``/``) so that frames of one relaxation trajectory never sit on both sides: groups are
shuffled with ``default_rng(seed)`` and taken until ``val_fraction`` of the structures is
reached, skipping any group whose removal would leave one of its elements without training
structures (its E0 could not be fitted and validation would measure a missing reference energy,
not the model).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from facet.data.batch import Graph

__all__ = ["read_graphs", "split_by_group", "elements_missing", "ShardedGraphs",
           "open_preprocessed", "load_training_data"]


def _read_source(path: Path, cutoff: float, energy_label: str) -> list[Graph]:
    """Any file format that :mod:`facet.data.sources` knows (MPTrj JSON, also gzipped; extxyz;
    ASE db), validated by its reader, with neighbour lists at ``cutoff``."""
    from facet.data.neighbors import graph_from_frame
    from facet.data.sources import read_frames

    return [graph_from_frame(f, cutoff) for f in read_frames(path, label=energy_label)]


class ShardedGraphs(Sequence):
    """A split of a preprocessed directory as a lazy sequence of graphs (nothing but the sizes
    is held in memory; one shard is cached at a time by the dataset).

    ``n_nodes`` / ``n_edges`` come from the shard offsets (one read of every shard at start).
    :meth:`order` is *shard-blocked*: shards are permuted, then the frames inside each shard,
    so that an epoch reads every shard once in sequence rather than jumping between shards at
    every structure (the scheme of :meth:`facet.data.dataset.PreprocessedDataset.graphs`).
    """

    def __init__(self, dataset):
        self.ds = dataset
        nn, ne = [], []
        for i in range(len(dataset.shards)):
            a = dataset.load_shard(i)
            nn.append(np.diff(a.node_offsets))
            ne.append(np.diff(a.edge_offsets))
        self.n_nodes = np.concatenate(nn) if nn else np.zeros(0, int)
        self.n_edges = np.concatenate(ne) if ne else np.zeros(0, int)
        self._offsets = np.cumsum([0] + [len(x) for x in nn])

    def __len__(self) -> int:
        return int(self.n_nodes.size)

    def __getitem__(self, i):
        return self.ds[int(i)]

    def order(self, seed: int, epoch: int) -> np.ndarray:
        rng = np.random.default_rng([seed, epoch])
        parts = []
        for k in rng.permutation(len(self._offsets) - 1):
            lo, hi = self._offsets[k], self._offsets[k + 1]
            parts.append(lo + rng.permutation(hi - lo))
        return np.concatenate(parts) if parts else np.zeros(0, int)


def open_preprocessed(path: Path, cutoff: float, split: str) -> ShardedGraphs:
    from facet.data.dataset import open_dataset

    ds = open_dataset(path, split)
    if ds.cutoff < cutoff - 1e-9:
        from facet.errors import InputError

        raise InputError(
            f"preprocessed dataset {path} was built with cutoff {ds.cutoff} A but the model needs "
            f"{cutoff} A; preprocess again with at least that cutoff"
        )
    return ShardedGraphs(ds)


def _read_preprocessed(path: Path, cutoff: float, energy_label: str) -> list[Graph]:
    src = open_preprocessed(path, cutoff, "all")
    return [src[i] for i in range(len(src))]


def read_graphs(paths: Sequence[str], cutoff: float, energy_label: str) -> list[Graph]:
    """Graphs of every structure in ``paths`` (in order): files in any format of
    :data:`facet.data.sources.SOURCE_FORMATS`, or preprocessed directories."""
    graphs: list[Graph] = []
    for p in paths:
        path = Path(p)
        reader = _read_preprocessed if path.is_dir() else _read_source
        got = reader(path, cutoff, energy_label)
        if not got:
            from facet.errors import InputError

            raise InputError(f"no frames read from {path}: it holds no structure")
        graphs.extend(got)
    return graphs


def material_of(key: str) -> str:
    """The material a frame key names: the part before the first ``/`` (MPTrj-style keys are
    ``<material>/<frame>``; a key without ``/`` is its own material)."""
    return key.split("/", 1)[0]


def split_by_group(graphs: Sequence[Graph], val_fraction: float, seed: int, *,
                   by: str = "material"):
    """``(train, val)`` lists; every structure lands in exactly one of them. ``by="frame"``
    makes every structure its own group."""
    if val_fraction <= 0:
        return list(graphs), []
    groups: dict[str, list[int]] = {}
    for i, g in enumerate(graphs):
        name = material_of(g.key or str(i)) if by == "material" else f"{i}"
        groups.setdefault(name, []).append(i)
    names = sorted(groups)
    elements = {name: set().union(*(set(np.unique(graphs[i].numbers).tolist())
                                    for i in groups[name])) for name in names}
    in_train = {}  # element -> number of training groups holding it
    for name in names:
        for z in elements[name]:
            in_train[z] = in_train.get(z, 0) + 1
    order = np.random.default_rng(seed).permutation(len(names))
    target = val_fraction * len(graphs)
    val_idx: list[int] = []
    for k in order:
        if len(val_idx) >= target:
            break
        name = names[k]
        if any(in_train[z] <= 1 for z in elements[name]):
            continue  # the last training group of one of its elements stays in training
        for z in elements[name]:
            in_train[z] -= 1
        val_idx.extend(groups[name])
    if len(val_idx) >= len(graphs):
        from .config import ConfigError

        raise ConfigError(
            f"config key 'data.val_fraction': {val_fraction} leaves no training structures "
            f"({len(names)} material groups); lower it or give data.val"
        )
    chosen = set(val_idx)
    train = [g for i, g in enumerate(graphs) if i not in chosen]
    val = [graphs[i] for i in sorted(chosen)]
    return train, val


def elements_missing(train: Sequence[Graph], other: Sequence[Graph]) -> list[int]:
    """Atomic numbers present in ``other`` but in no structure of ``train``."""
    seen = set()
    for g in train:
        seen.update(np.unique(g.numbers).tolist())
    missing = set()
    for g in other:
        missing.update(set(np.unique(g.numbers).tolist()) - seen)
    return sorted(missing)


def load_training_data(data_cfg, cutoff: float) -> tuple[Sequence[Graph], Sequence[Graph]]:
    """``(train, val)`` for a :class:`facet.train.config.DataSection`.

    * one preprocessed directory in ``train`` and no ``val``: its own ``train`` / ``val``
      splits, read lazily (:class:`ShardedGraphs`; the way to train on the full MPTrj);
    * ``val`` given: everything in ``train`` trains, everything in ``val`` validates;
    * otherwise: ``val_fraction`` of ``train`` is held out by material (:func:`split_by_group`).
    """
    train = list(data_cfg.train)
    if len(train) == 1 and Path(train[0]).is_dir() and not data_cfg.val:
        return (open_preprocessed(Path(train[0]), cutoff, "train"),
                open_preprocessed(Path(train[0]), cutoff, "val"))
    graphs = read_graphs(train, cutoff, data_cfg.energy_label)
    if data_cfg.val:
        return graphs, read_graphs(data_cfg.val, cutoff, data_cfg.energy_label)
    return split_by_group(graphs, data_cfg.val_fraction, data_cfg.seed, by=data_cfg.split_by)
