"""Training data: read structures from the configured paths, build graphs, split train/val.

Readers are chosen by a registry keyed by file suffix (a directory is a preprocessed dataset);
units and signs are converted once by the data-pipeline readers (:mod:`facet.data`), never here.

The validation split is drawn by *group* (the material id, the part of a graph key before the
first ``/``) so that frames of one relaxation trajectory never sit on both sides: groups are
shuffled with ``default_rng(seed)`` and taken until ``val_fraction`` of the structures is
reached, skipping any group whose removal would leave one of its elements without training
structures (its E0 could not be fitted and validation would measure a missing reference energy,
not the model).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from facet.data.batch import Graph

__all__ = ["READERS", "read_graphs", "split_by_group", "elements_missing"]


def _read_mptrj(path: Path, cutoff: float, energy_label: str) -> list[Graph]:
    from facet.data.mptrj import iter_mptrj
    from facet.data.neighbors import graph_from_frame

    return [graph_from_frame(f, cutoff) for f in iter_mptrj(path, label=energy_label)]


def _read_extxyz(path: Path, cutoff: float, energy_label: str) -> list[Graph]:
    from facet.data.neighbors import graph_from_frame

    try:
        from facet.data.extxyz import iter_extxyz
    except ImportError as exc:  # the reader ships with the data pipeline
        raise RuntimeError(f"cannot read {path}: facet.data.extxyz is not available") from exc
    return [graph_from_frame(f, cutoff) for f in iter_extxyz(path)]


def _read_preprocessed(path: Path, cutoff: float, energy_label: str) -> list[Graph]:
    try:
        from facet.data.dataset import open_dataset
    except ImportError as exc:
        raise RuntimeError(f"cannot read {path}: facet.data.dataset is not available") from exc
    ds = open_dataset(path, "all")
    if ds.cutoff < cutoff - 1e-9:
        raise ValueError(
            f"preprocessed dataset {path} was built with cutoff {ds.cutoff} A but the model needs "
            f"{cutoff} A; preprocess again with at least that cutoff"
        )
    return [ds[i] for i in range(len(ds))]


#: suffix -> reader(path, cutoff, energy_label) -> list of graphs; "/" marks a directory.
READERS: dict[str, Callable[[Path, float, str], list[Graph]]] = {
    ".json": _read_mptrj,
    ".extxyz": _read_extxyz,
    ".xyz": _read_extxyz,
    "/": _read_preprocessed,
}


def read_graphs(paths: Sequence[str], cutoff: float, energy_label: str) -> list[Graph]:
    """Graphs of every structure in ``paths`` (in order)."""
    graphs: list[Graph] = []
    for p in paths:
        path = Path(p)
        suffix = "/" if path.is_dir() else path.suffix.lower()
        if suffix not in READERS:
            raise ValueError(
                f"don't know how to read {path}: suffix {suffix!r} is none of {sorted(READERS)}"
            )
        got = READERS[suffix](path, cutoff, energy_label)
        if not got:
            raise ValueError(f"{path} holds no structures")
        graphs.extend(got)
    return graphs


def split_by_group(graphs: Sequence[Graph], val_fraction: float, seed: int):
    """``(train, val)`` lists; every structure lands in exactly one of them."""
    if val_fraction <= 0:
        return list(graphs), []
    groups: dict[str, list[int]] = {}
    for i, g in enumerate(graphs):
        groups.setdefault((g.key or str(i)).split("/")[0], []).append(i)
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
        raise ValueError(
            f"data.val_fraction={val_fraction} leaves no training structures ({len(names)} "
            "material groups); lower it or give data.val"
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
