"""Data pipeline: validated frames, readers, neighbour lists, shards and padded graph batches.

See docs/data.md. The heavier modules (``mptrj``, ``extxyz``, ``preprocess``, ``dataset``) are
imported from their own submodules; this package re-exports the core types and functions.
"""

from .batch import Graph, GraphBatch, batches_by_budget, bucket_size, collate, pad_sizes
from .frames import (
    KBAR_PER_EV_A3,
    Frame,
    FrameError,
    ReadStats,
    make_frame,
    stress_from_vasp_kbar,
    validate_frame,
)
from .neighbors import brute_force_neighbor_list, graph_from_atoms, graph_from_frame, neighbor_list

__all__ = [
    "Graph",
    "GraphBatch",
    "batches_by_budget",
    "bucket_size",
    "collate",
    "pad_sizes",
    "KBAR_PER_EV_A3",
    "Frame",
    "FrameError",
    "ReadStats",
    "make_frame",
    "stress_from_vasp_kbar",
    "validate_frame",
    "neighbor_list",
    "brute_force_neighbor_list",
    "graph_from_atoms",
    "graph_from_frame",
]
