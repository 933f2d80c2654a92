"""Data pipeline: validated frames, readers, neighbour lists and padded graph batches."""

from .batch import Graph, GraphBatch, batches_by_budget, bucket_size, collate, pad_sizes
from .neighbors import brute_force_neighbor_list, graph_from_atoms, graph_from_frame, neighbor_list

__all__ = [
    "Graph",
    "GraphBatch",
    "batches_by_budget",
    "bucket_size",
    "collate",
    "pad_sizes",
    "neighbor_list",
    "brute_force_neighbor_list",
    "graph_from_atoms",
    "graph_from_frame",
]
