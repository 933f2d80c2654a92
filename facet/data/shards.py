"""The on-disk shard format: one HDF5 file holds many graphs as concatenated flat arrays.

Format version 1 (``attrs["format_version"] == 1``); ``F`` frames, ``N`` atoms, ``E`` edges::

    node_offsets  (F+1,) int64   atoms of frame f are rows node_offsets[f]:node_offsets[f+1]
    edge_offsets  (F+1,) int64   edges of frame f likewise
    positions     (N, 3) float64 Angstrom
    numbers       (N,)   uint8   atomic numbers
    forces        (N, 3) float64 eV/A (zeros where has_forces is False)
    magmom        (N,)   float64 Bohr magneton (zeros where has_magmom is False)
    senders       (E,)   uint16 or int32, *local* index (within the frame) of the neighbour j
    receivers     (E,)   same dtype, local index of the centre i
    shifts        (E, 3) int8 or int16 or int32 integer cell shifts (smallest dtype that fits)
    cell          (F, 3, 3) float64 Angstrom, rows are cell vectors
    pbc           (F, 3) bool
    energy        (F,)   float64 eV (0 where has_energy is False)
    stress        (F, 3, 3) float64 eV/A^3, ASE sign (zeros where has_stress is False)
    has_energy, has_forces, has_stress, has_magmom  (F,) bool
    material_id, frame_id  (F,) UTF-8 strings

Edges follow :mod:`facet.data.batch`: ``r_ij = x[senders] + shifts @ cell - x[receivers]``.
Why HDF5: one self-describing file per shard with typed, named arrays, readable from C, Julia or
h5py without Facet; contiguous flat arrays load in a few large reads (no per-frame objects, no
pickle); the local indices and small shift dtypes keep the edge arrays (the bulk of the data) at
7 bytes per edge in the common case (``uint16`` indices, ``int8`` shifts). No compression:
decompression would cost more CPU than the I/O it saves on a local disk.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .batch import Graph

__all__ = ["SHARD_FORMAT_VERSION", "ShardArrays", "write_shard", "read_shard"]

SHARD_FORMAT_VERSION = 1


def _smallest_int(values: np.ndarray, candidates) -> np.dtype:
    lo, hi = (int(values.min()), int(values.max())) if values.size else (0, 0)
    for dt in candidates:
        info = np.iinfo(dt)
        if info.min <= lo and hi <= info.max:
            return np.dtype(dt)
    return np.dtype(np.int64)


def write_shard(path: str | os.PathLike, graphs: Sequence[Graph], *, cutoff: float) -> dict:
    """Write graphs (with their labels) to one shard; returns its counts.

    ``Graph.key`` must be ``"<material_id>/<frame_id>"`` (as :func:`graph_from_frame` makes it).
    """
    import h5py

    F = len(graphs)
    n_node = np.array([g.n_node for g in graphs], np.int64)
    n_edge = np.array([g.n_edge for g in graphs], np.int64)
    node_offsets = np.concatenate([[0], np.cumsum(n_node)])
    edge_offsets = np.concatenate([[0], np.cumsum(n_edge)])
    N, E = int(node_offsets[-1]), int(edge_offsets[-1])

    positions = np.concatenate([g.positions for g in graphs]) if F else np.zeros((0, 3))
    numbers = np.concatenate([g.numbers for g in graphs]) if F else np.zeros(0, np.int64)
    if numbers.size and (numbers.min() < 1 or numbers.max() > 255):
        raise ValueError(f"atomic numbers out of range for {path}")
    senders = np.concatenate([g.senders for g in graphs]) if F else np.zeros(0, np.int64)
    receivers = np.concatenate([g.receivers for g in graphs]) if F else np.zeros(0, np.int64)
    shifts = np.concatenate([g.shifts for g in graphs]) if F else np.zeros((0, 3), np.int64)
    forces = np.zeros((N, 3))
    magmom = np.zeros(N)
    has = {k: np.zeros(F, bool) for k in ("energy", "forces", "stress", "magmom")}
    energy = np.zeros(F)
    stress = np.zeros((F, 3, 3))
    for f, g in enumerate(graphs):
        sl = slice(node_offsets[f], node_offsets[f + 1])
        if g.energy is not None:
            energy[f], has["energy"][f] = g.energy, True
        if g.forces is not None:
            forces[sl], has["forces"][f] = g.forces, True
        if g.stress is not None:
            stress[f], has["stress"][f] = g.stress, True
        if g.magmom is not None:
            magmom[sl], has["magmom"][f] = g.magmom, True
    mids, fids = [], []
    for g in graphs:
        mid, _, fid = g.key.rpartition("/")  # frame ids carry "/" as "%2F" (Frame.key)
        mids.append(mid)
        fids.append(fid)
    index_dtype = _smallest_int(np.concatenate([[0], n_node]), (np.uint16, np.int32))
    shift_dtype = _smallest_int(shifts, (np.int8, np.int16, np.int32))
    tmp = f"{os.fspath(path)}.partial"
    with h5py.File(tmp, "w") as h:
        h.attrs["format_version"] = SHARD_FORMAT_VERSION
        h.attrs["cutoff"] = float(cutoff)
        h.attrs["n_frames"], h.attrs["n_atoms"], h.attrs["n_edges"] = F, N, E
        h["node_offsets"], h["edge_offsets"] = node_offsets, edge_offsets
        h["positions"], h["numbers"] = positions, numbers.astype(np.uint8)
        h["forces"], h["magmom"] = forces, magmom
        h["senders"] = senders.astype(index_dtype)
        h["receivers"] = receivers.astype(index_dtype)
        h["shifts"] = shifts.astype(shift_dtype)
        h["cell"] = np.stack([g.cell for g in graphs]) if F else np.zeros((0, 3, 3))
        h["pbc"] = np.stack([g.pbc for g in graphs]) if F else np.zeros((0, 3), bool)
        h["energy"], h["stress"] = energy, stress
        for k, v in has.items():
            h[f"has_{k}"] = v
        str_dt = h5py.string_dtype("utf-8")
        h.create_dataset("material_id", data=np.array(mids, dtype=object), dtype=str_dt)
        h.create_dataset("frame_id", data=np.array(fids, dtype=object), dtype=str_dt)
    os.replace(tmp, path)
    return {"frames": F, "atoms": N, "edges": E}


@dataclass(frozen=True)
class ShardArrays:
    """A shard loaded into memory; :meth:`graph` slices one frame out as a :class:`Graph`."""

    path: str
    cutoff: float
    node_offsets: np.ndarray
    edge_offsets: np.ndarray
    positions: np.ndarray
    numbers: np.ndarray
    forces: np.ndarray
    magmom: np.ndarray
    senders: np.ndarray
    receivers: np.ndarray
    shifts: np.ndarray
    cell: np.ndarray
    pbc: np.ndarray
    energy: np.ndarray
    stress: np.ndarray
    has_energy: np.ndarray
    has_forces: np.ndarray
    has_stress: np.ndarray
    has_magmom: np.ndarray
    material_id: np.ndarray
    frame_id: np.ndarray

    def __len__(self) -> int:
        return int(self.node_offsets.shape[0] - 1)

    def graph(self, f: int) -> Graph:
        a, b = self.node_offsets[f], self.node_offsets[f + 1]
        c, d = self.edge_offsets[f], self.edge_offsets[f + 1]
        return Graph(
            positions=self.positions[a:b],
            numbers=self.numbers[a:b].astype(np.int64),
            cell=self.cell[f],
            pbc=self.pbc[f],
            # Stored narrow (uint16/int8) to keep shards and memory small; widened per graph so
            # that consumers' index arithmetic never wraps around.
            senders=self.senders[c:d].astype(np.int64),
            receivers=self.receivers[c:d].astype(np.int64),
            shifts=self.shifts[c:d].astype(np.int64),
            energy=float(self.energy[f]) if self.has_energy[f] else None,
            forces=self.forces[a:b] if self.has_forces[f] else None,
            stress=self.stress[f] if self.has_stress[f] else None,
            magmom=self.magmom[a:b] if self.has_magmom[f] else None,
            key=f"{self.material_id[f]}/{self.frame_id[f]}",
        )


def read_shard(path: str | os.PathLike) -> ShardArrays:
    """Load a whole shard (integer arrays keep their stored dtypes; :meth:`ShardArrays.graph`
    widens them); ``ValueError`` naming the file when it is not a readable shard of a supported
    version."""
    import h5py

    path = os.fspath(path)
    try:
        with h5py.File(path, "r") as h:
            version = int(h.attrs.get("format_version", -1))
            if version != SHARD_FORMAT_VERSION:
                raise ValueError(
                    f"shard {path} has format version {version}; this Facet reads version "
                    f"{SHARD_FORMAT_VERSION}: preprocess the source again"
                )
            d = {k: h[k][...] for k in h.keys()}
            cutoff = float(h.attrs["cutoff"])
    except (OSError, KeyError) as e:
        raise ValueError(f"shard {path} is missing or corrupt ({type(e).__name__}: {e})") from None
    for k in ("material_id", "frame_id"):
        d[k] = np.array([x.decode() if isinstance(x, bytes) else str(x) for x in d[k]], object)
    return ShardArrays(path=path, cutoff=cutoff, **d)
