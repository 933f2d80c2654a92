"""Deprecated: ``facet.batched.neighbors`` moved to :mod:`facet.dynamics.neighbors`
(re-exported for one release)."""

from facet.deprecation import warn_moved
from facet.dynamics.neighbors import (
    CAPACITY_MULTIPLE,
    build_graphs,
    capacity_for,
    edge_vectors,
    list_is_valid,
    mask_edges,
    padded_batch,
)

__all__ = [
    "CAPACITY_MULTIPLE",
    "build_graphs",
    "capacity_for",
    "edge_vectors",
    "list_is_valid",
    "mask_edges",
    "padded_batch",
]

warn_moved(__name__, "facet.dynamics.neighbors")
