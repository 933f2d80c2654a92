"""Read a preprocessed directory (``manifest.json`` + HDF5 shards) as graphs and padded batches.

Order and host sharding are deterministic functions of ``(seed, epoch)``: the shard order is
permuted, then the frames inside each loaded shard; the resulting global sequence is dealt
round-robin to ``shard_count`` readers (reader ``k`` takes positions ``k, k + shard_count, ...``),
so every frame goes to exactly one reader per epoch and all readers agree without talking. Each
reader loads every shard (reading is cheap next to training); only one shard is in memory at a
time.

Every shard is checked against the sha256 in the manifest the first time it is loaded
(``verify="sha256"``; ``"size"`` checks only the byte count, ``"none"`` nothing); a missing or
corrupt shard raises :class:`DatasetError` naming the file and what to do.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import numpy as np

from .batch import Graph, GraphBatch, batches_by_budget
from .preprocess import MANIFEST, SPLITS
from .shards import SHARD_FORMAT_VERSION, ShardArrays, read_shard
from .sources import sha256_file

__all__ = ["DatasetError", "PreprocessedDataset", "load_manifest", "open_dataset"]

from ..errors import InputError

Verify = Literal["sha256", "size", "none"]


class DatasetError(InputError):
    """A preprocessed directory that cannot be used as it is (missing/corrupt shard, version)."""


def load_manifest(root: str | os.PathLike) -> dict:
    path = Path(root) / MANIFEST
    if not path.exists():
        raise DatasetError(
            f"{path} does not exist: {root} is not a preprocessed dataset, or its preprocessing "
            "did not finish (run `facet preprocess` again)"
        )
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DatasetError(f"{path} is not valid JSON ({e})") from None
    if manifest.get("format_version") != SHARD_FORMAT_VERSION:
        raise DatasetError(
            f"{path}: format version {manifest.get('format_version')}, this Facet reads "
            f"{SHARD_FORMAT_VERSION}; preprocess the source again"
        )
    return manifest


class PreprocessedDataset:
    """One split of a preprocessed directory.

    Args:
        root: the directory ``facet preprocess`` wrote.
        split: ``"train"`` or ``"val"``.
        verify: shard check on first load (see the module docstring).
    """

    def __init__(self, root: str | os.PathLike, split: str = "train", *, verify: Verify = "sha256"):
        if split not in (*SPLITS, "all"):
            raise ValueError(f"split must be one of {(*SPLITS, 'all')}, got {split!r}")
        if verify not in ("sha256", "size", "none"):
            raise ValueError(f"verify must be 'sha256', 'size' or 'none', got {verify!r}")
        self.root = Path(root)
        self.split = split
        self.verify = verify
        self.manifest = load_manifest(root)
        names = SPLITS if split == "all" else (split,)
        self.shards: list[dict] = [s for n in names for s in self.manifest["splits"][n]["shards"]]
        self.cutoff = float(self.manifest["cutoff"])
        self._verified: set[str] = set()
        self._offsets = np.cumsum([0] + [int(s["frames"]) for s in self.shards])
        self._cached: tuple[int, ShardArrays] | None = None
        self._sizes: tuple[np.ndarray, np.ndarray] | None = None

    def __len__(self) -> int:
        return int(self._offsets[-1])

    def __getitem__(self, i: int) -> Graph:
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"index {i} out of range for {n} frames in {self.root} ({self.split})")
        i %= n
        k = int(np.searchsorted(self._offsets, i, side="right") - 1)
        if self._cached is None or self._cached[0] != k:
            self._cached = (k, self.load_shard(k))
        return self._cached[1].graph(i - int(self._offsets[k]))

    @property
    def stats(self) -> dict:
        """Statistics of the split (for ``"all"``, of the training split)."""
        return self.manifest["splits"]["train" if self.split == "all" else self.split]["stats"]

    def _check(self, info: dict) -> Path:
        path = self.root / info["file"]
        if not path.exists():
            raise DatasetError(
                f"shard {path} listed in {self.root / MANIFEST} is missing; restore it or "
                "preprocess the source again"
            )
        if self.verify == "none" or info["file"] in self._verified:
            return path
        size = path.stat().st_size
        if size != info["bytes"]:
            raise DatasetError(
                f"shard {path} has {size} bytes, the manifest says {info['bytes']}: it is corrupt "
                "or truncated; preprocess the source again"
            )
        if self.verify == "sha256" and sha256_file(path) != info["sha256"]:
            raise DatasetError(
                f"shard {path} does not match its sha256 in the manifest: it is corrupt; "
                "preprocess the source again"
            )
        self._verified.add(info["file"])
        return path

    def load_shard(self, i: int) -> ShardArrays:
        info = self.shards[i]
        path = self._check(info)
        try:
            arrays = read_shard(path)
        except ValueError as e:
            raise DatasetError(str(e)) from None
        if len(arrays) != int(info["frames"]):
            raise DatasetError(
                f"shard {path} holds {len(arrays)} frames, manifest {info['frames']}"
            )
        return arrays

    def sizes(self) -> tuple[np.ndarray, np.ndarray]:
        """``(n_nodes, n_edges)`` of every frame, in dataset order, reading only the offset
        arrays of each shard (a partial HDF5 read: cheap even for MPTrj-sized datasets). Shards
        are checked for existence and size here; the sha256 check happens on first full load."""
        import h5py

        if self._sizes is None:
            nn, ne = [], []
            for info in self.shards:
                path = self.root / info["file"]
                if not path.exists() or path.stat().st_size != info["bytes"]:
                    self._check(info)  # raises the precise DatasetError
                with h5py.File(path, "r") as h:
                    nn.append(np.diff(h["node_offsets"][...]))
                    ne.append(np.diff(h["edge_offsets"][...]))
            empty = np.zeros(0, np.int64)
            self._sizes = (np.concatenate(nn) if nn else empty, np.concatenate(ne) if ne else empty)
        return self._sizes

    def graphs(
        self,
        *,
        shuffle: bool = False,
        seed: int = 0,
        epoch: int = 0,
        shard_index: int = 0,
        shard_count: int = 1,
    ) -> Iterator[Graph]:
        """Yield graphs (see the module docstring for order and host sharding).

        Without ``shuffle`` the order is the stored order (the source order within a split).
        """
        if not (0 <= shard_index < shard_count):
            raise ValueError(
                f"need 0 <= shard_index < shard_count, got {shard_index}/{shard_count}"
            )
        rng = np.random.default_rng([seed, epoch]) if shuffle else None
        order = rng.permutation(len(self.shards)) if shuffle else range(len(self.shards))
        position = 0
        for i in order:
            arrays = self.load_shard(int(i))
            n = len(arrays)
            frames = rng.permutation(n) if shuffle else np.arange(n)
            # Global positions position..position+n-1; this reader takes those = shard_index mod.
            first = (shard_index - position) % shard_count
            for f in frames[first::shard_count]:
                yield arrays.graph(int(f))
            position += n

    def batches(
        self,
        *,
        max_nodes: int,
        max_edges: int,
        max_graphs: int,
        dtype=np.float32,
        **graph_kwargs,
    ) -> Iterator[GraphBatch]:
        """Padded batches of one fixed shape (:func:`facet.data.batch.batches_by_budget`)."""
        yield from batches_by_budget(
            self.graphs(**graph_kwargs),
            max_nodes=max_nodes,
            max_edges=max_edges,
            max_graphs=max_graphs,
            dtype=dtype,
        )

    def suggest_budget(self, graphs_per_batch: int, *, headroom: float = 1.25) -> dict:
        """A ``(max_nodes, max_edges, max_graphs)`` budget for about ``graphs_per_batch`` average
        structures per batch, never smaller than the largest single structure."""
        st = self.stats
        if not st["frames"]:
            raise DatasetError(f"split {self.split!r} of {self.root} is empty")
        mean_atoms = st["atoms"] / st["frames"]
        mean_edges = st["edges"] / st["frames"]
        nodes = int(max(mean_atoms * graphs_per_batch * headroom, st["atoms_per_frame"]["max"]) + 1)
        edges = int(max(mean_edges * graphs_per_batch * headroom, st["edges_per_frame"]["max"]))
        return {
            "max_nodes": nodes,
            "max_edges": edges,
            "max_graphs": graphs_per_batch * 2 + 1,
        }


def open_dataset(
    root: str | os.PathLike, split: str = "all", *, verify: Verify = "sha256"
) -> PreprocessedDataset:
    """Open a preprocessed directory (``split``: ``"train"``, ``"val"`` or ``"all"``)."""
    return PreprocessedDataset(root, split, verify=verify)
