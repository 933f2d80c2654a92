"""Data pipeline: validated frames, readers, neighbour lists and padded graph batches."""

from .batch import Graph, GraphBatch, batches_by_budget, bucket_size, collate, pad_sizes

__all__ = ["Graph", "GraphBatch", "batches_by_budget", "bucket_size", "collate", "pad_sizes"]
