"""Padded graph batches: the one data structure the model, the loss and the calculator consume.

A :class:`GraphBatch` holds several structures (graphs) concatenated along the node and edge
axes and padded to a fixed size, so that ``jax.jit`` compiles one program per *bucket* of sizes
rather than one per structure. Padding follows one convention throughout (the same as jraph's):

* the last graph slot (index ``n_graph - 1``) is always a padding graph and ``graph_mask`` is
  False there; every padding node belongs to it;
* padding nodes sit at the end of the node axis (``node_mask`` False), at position 0 with
  atomic number 0;
* padding edges point from the last node to the last node (a padding node) with zero shift and
  ``edge_mask`` False, so that anything scattered along them lands on a padding node.

Consumers multiply by the masks; they never need to know how many real entries there are.

Edge convention: an edge ``e`` carries a message from ``senders[e]`` (the neighbour ``j``) to
``receivers[e]`` (the centre ``i``). Its vector is

.. math::  \\mathbf r_{ij} = \\mathbf x_j + \\mathbf S_e \\, \\mathbf C_{g} - \\mathbf x_i ,

with ``S_e = shifts[e]`` the integer cell shift (a row vector) and ``C_g`` the cell of its graph
(cell vectors as rows, ASE's convention).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

__all__ = [
    "Graph",
    "GraphBatch",
    "BatchShape",
    "pack_indices",
    "bucket_size",
    "collate",
    "pad_sizes",
    "batches_by_budget",
]


@dataclass(frozen=True)
class Graph:
    """One structure with its neighbour list, in NumPy, before batching.

    Attributes:
        positions: ``(n, 3)`` float, Cartesian positions in Angstrom.
        numbers: ``(n,)`` int, atomic numbers (1..118).
        cell: ``(3, 3)`` float, cell vectors as rows in Angstrom (zeros for a molecule).
        pbc: ``(3,)`` bool, periodicity along each cell vector.
        senders: ``(m,)`` int, index of the neighbour ``j`` of each edge.
        receivers: ``(m,)`` int, index of the centre ``i`` of each edge.
        shifts: ``(m, 3)`` int, cell shift ``S`` of the neighbour image (see module docstring).
        energy: total energy in eV, or None when unlabelled.
        forces: ``(n, 3)`` eV/A, or None.
        stress: ``(3, 3)`` eV/A^3, ASE sign (positive = tensile), or None.
        magmom: ``(n,)`` magnetic moments in Bohr magneton, or None.
        weight: per-structure loss weight (1 by default).
        key: a human-readable identifier (material and frame id) used in error messages.
    """

    positions: np.ndarray
    numbers: np.ndarray
    cell: np.ndarray
    pbc: np.ndarray
    senders: np.ndarray
    receivers: np.ndarray
    shifts: np.ndarray
    energy: float | None = None
    forces: np.ndarray | None = None
    stress: np.ndarray | None = None
    magmom: np.ndarray | None = None
    weight: float = 1.0
    key: str = ""

    @property
    def n_node(self) -> int:
        return int(self.numbers.shape[0])

    @property
    def n_edge(self) -> int:
        return int(self.senders.shape[0])


class GraphBatch(NamedTuple):
    """A padded batch of graphs (a JAX pytree; every field is an array).

    Shapes: ``N`` padded nodes, ``E`` padded edges, ``G`` graph slots (the last one padding).

    Attributes:
        positions: ``(N, 3)`` Angstrom.
        numbers: ``(N,)`` int32 atomic numbers; 0 on padding nodes.
        node_graph: ``(N,)`` int32 graph index of every node.
        node_mask: ``(N,)`` bool, True on real nodes.
        senders: ``(E,)`` int32 neighbour index ``j`` of each edge.
        receivers: ``(E,)`` int32 centre index ``i`` of each edge.
        shifts: ``(E, 3)`` float, integer cell shifts of the neighbour image.
        edge_mask: ``(E,)`` bool, True on real edges.
        cell: ``(G, 3, 3)`` Angstrom, cell vectors as rows (identity on padding graphs so
            that volumes stay finite).
        pbc: ``(G, 3)`` bool.
        n_node: ``(G,)`` int32 real nodes per graph.
        n_edge: ``(G,)`` int32 real edges per graph.
        graph_mask: ``(G,)`` bool, True on real graphs.
        energy: ``(G,)`` eV, total energy label (0 where absent).
        forces: ``(N, 3)`` eV/A (0 where absent).
        stress: ``(G, 3, 3)`` eV/A^3, ASE sign (0 where absent).
        energy_mask: ``(G,)`` bool, True where an energy label exists.
        forces_mask: ``(G,)`` bool, True where force labels exist (per graph).
        stress_mask: ``(G,)`` bool, True where a stress label exists.
        weight: ``(G,)`` per-structure loss weight (0 on padding).
    """

    positions: np.ndarray
    numbers: np.ndarray
    node_graph: np.ndarray
    node_mask: np.ndarray
    senders: np.ndarray
    receivers: np.ndarray
    shifts: np.ndarray
    edge_mask: np.ndarray
    cell: np.ndarray
    pbc: np.ndarray
    n_node: np.ndarray
    n_edge: np.ndarray
    graph_mask: np.ndarray
    energy: np.ndarray
    forces: np.ndarray
    stress: np.ndarray
    energy_mask: np.ndarray
    forces_mask: np.ndarray
    stress_mask: np.ndarray
    weight: np.ndarray

    @property
    def num_graphs(self) -> int:
        """Graph slots including the padding slot."""
        return int(self.cell.shape[0])


def bucket_size(n: int, *, minimum: int = 8, growth: float = 1.25) -> int:
    """Smallest bucket ``>= n`` from a geometric ladder (``minimum * growth**k``, rounded up to 8).

    A ladder with ratio 1.25 wastes at most 25 % to padding while keeping the number of distinct
    shapes (and so of compilations) logarithmic in the largest size.
    """
    if n <= minimum:
        return minimum
    k = math.ceil(math.log(n / minimum) / math.log(growth) - 1e-9)
    size = minimum * growth**k
    size = int(math.ceil(size / 8.0) * 8)
    while size < n:  # rounding guard
        size += 8
    return size


def pad_sizes(graphs: Sequence[Graph], *, headroom: float = 0.0) -> tuple[int, int, int]:
    """Bucketed ``(N, E, G)`` for a list of graphs: one padding node and one padding graph always.

    ``headroom`` (e.g. 0.1) adds slack before bucketing so that a slowly growing neighbour count
    (MD, relaxation) does not cross into a new bucket at every step.
    """
    n = sum(g.n_node for g in graphs)
    e = sum(g.n_edge for g in graphs)
    n_pad = bucket_size(int(math.ceil(n * (1 + headroom))) + 1)
    e_pad = bucket_size(int(math.ceil(e * (1 + headroom))) + 1)
    return n_pad, e_pad, len(graphs) + 1


def _padded_batch(N: int, E: int, G: int, dtype) -> GraphBatch:
    """An all-padding batch: every node, edge and graph slot belongs to the padding graph
    ``G - 1`` (senders and receivers the padding node ``N - 1``), masks false, cells identity."""
    pad_node, pad_graph = N - 1, G - 1
    return GraphBatch(
        positions=np.zeros((N, 3), dtype),
        numbers=np.zeros((N,), np.int32),
        node_graph=np.full((N,), pad_graph, np.int32),
        node_mask=np.zeros((N,), bool),
        senders=np.full((E,), pad_node, np.int32),
        receivers=np.full((E,), pad_node, np.int32),
        shifts=np.zeros((E, 3), dtype),
        edge_mask=np.zeros((E,), bool),
        cell=np.tile(np.eye(3, dtype=dtype), (G, 1, 1)),
        pbc=np.zeros((G, 3), bool),
        n_node=np.zeros((G,), np.int32),
        n_edge=np.zeros((G,), np.int32),
        graph_mask=np.zeros((G,), bool),
        energy=np.zeros((G,), dtype),
        forces=np.zeros((N, 3), dtype),
        stress=np.zeros((G, 3, 3), dtype),
        energy_mask=np.zeros((G,), bool),
        forces_mask=np.zeros((G,), bool),
        stress_mask=np.zeros((G,), bool),
        weight=np.zeros((G,), dtype),
    )


def _put(b: GraphBatch, gi: int, g: Graph, n0: int, e0: int) -> None:
    """Write graph ``g`` into slot ``gi`` of ``b``, its nodes from ``n0``, its edges from ``e0``."""
    n, m = g.n_node, g.n_edge
    sl, el = slice(n0, n0 + n), slice(e0, e0 + m)
    b.positions[sl] = g.positions
    b.numbers[sl] = g.numbers
    b.node_graph[sl] = gi
    b.node_mask[sl] = True
    b.senders[el] = g.senders + n0
    b.receivers[el] = g.receivers + n0
    b.shifts[el] = g.shifts
    b.edge_mask[el] = True
    b.cell[gi] = g.cell
    b.pbc[gi] = g.pbc
    b.n_node[gi], b.n_edge[gi] = n, m
    b.graph_mask[gi] = True
    b.weight[gi] = g.weight
    if g.energy is not None:
        b.energy[gi], b.energy_mask[gi] = g.energy, True
    if g.forces is not None:
        b.forces[sl], b.forces_mask[gi] = g.forces, True
    if g.stress is not None:
        b.stress[gi], b.stress_mask[gi] = g.stress, True


def collate(
    graphs: Sequence[Graph],
    n_node_pad: int | None = None,
    n_edge_pad: int | None = None,
    n_graph_pad: int | None = None,
    *,
    dtype: np.dtype | str = np.float64,
) -> GraphBatch:
    """Concatenate graphs and pad them to ``(n_node_pad, n_edge_pad, n_graph_pad)``.

    Sizes default to :func:`pad_sizes`. Raises ``ValueError`` naming the sizes when the graphs do
    not fit (at least one padding node and one padding graph slot are required).
    """
    if not graphs:
        raise ValueError("collate() needs at least one graph")
    dn, de, dg = pad_sizes(graphs)
    n_node_pad = dn if n_node_pad is None else n_node_pad
    n_edge_pad = de if n_edge_pad is None else n_edge_pad
    n_graph_pad = dg if n_graph_pad is None else n_graph_pad
    n_tot = sum(g.n_node for g in graphs)
    e_tot = sum(g.n_edge for g in graphs)
    if n_tot + 1 > n_node_pad or e_tot > n_edge_pad or len(graphs) + 1 > n_graph_pad:
        raise ValueError(
            f"{len(graphs)} graphs with {n_tot} nodes and {e_tot} edges do not fit a batch "
            f"padded to {n_node_pad} nodes (one kept for padding), {n_edge_pad} edges and "
            f"{n_graph_pad} graph slots (one kept for padding)"
        )
    b = _padded_batch(n_node_pad, n_edge_pad, n_graph_pad, dtype)
    n0 = e0 = 0
    for gi, g in enumerate(graphs):
        _put(b, gi, g, n0, e0)
        n0 += g.n_node
        e0 += g.n_edge
    # Padding graph: every padding node and edge belongs to it.
    b.n_node[-1] = n_node_pad - n0
    b.n_edge[-1] = n_edge_pad - e0
    return b


class BatchShape(NamedTuple):
    """A padded batch shape; ``max_nodes`` and ``max_graphs`` include one padding slot each."""

    max_nodes: int
    max_edges: int
    max_graphs: int


def pack_indices(order, n_nodes: np.ndarray, n_edges: np.ndarray, budget) -> list[np.ndarray]:
    """Greedy packing of ``order`` (structure indices) into batches of the shape ``budget`` (a
    :class:`BatchShape` or any object with its three fields), in order: a batch closes when the
    next structure would overflow its nodes (one is padding), edges or graph slots (one is
    padding). A structure too large for the shape alone gets a batch of its own; callers check
    sizes first."""
    packs: list[np.ndarray] = []
    cur: list[int] = []
    n = e = 0
    for i in order:
        ni, ei = int(n_nodes[i]), int(n_edges[i])
        if cur and (n + ni + 1 > budget.max_nodes or e + ei > budget.max_edges
                    or len(cur) + 2 > budget.max_graphs):
            packs.append(np.asarray(cur))
            cur, n, e = [], 0, 0
        cur.append(int(i))
        n += ni
        e += ei
    if cur:
        packs.append(np.asarray(cur))
    return packs


def batches_by_budget(
    graphs: Iterable[Graph],
    *,
    max_nodes: int,
    max_edges: int,
    max_graphs: int,
    dtype: np.dtype | str = np.float64,
) -> Iterator[GraphBatch]:
    """Greedy packing into batches that all share one padded shape ``(max_nodes, max_edges,
    max_graphs)``: one compiled program for a whole epoch, and memory bounded by the edge budget
    whatever the mix of structure sizes.

    Every graph is yielded exactly once, in order; a graph that alone exceeds the budget raises
    ``ValueError`` naming it (it is never dropped).
    """
    current: list[Graph] = []
    n = e = 0
    for g in graphs:
        if g.n_node + 1 > max_nodes or g.n_edge > max_edges or max_graphs < 2:
            raise ValueError(
                f"structure {g.key or '?'} ({g.n_node} atoms, {g.n_edge} edges) does not fit the "
                f"batch budget of {max_nodes} nodes / {max_edges} edges / {max_graphs} graph "
                "slots; raise the budget"
            )
        full = n + g.n_node + 1 > max_nodes or e + g.n_edge > max_edges
        if current and (full or len(current) + 2 > max_graphs):
            yield collate(current, max_nodes, max_edges, max_graphs, dtype=dtype)
            current, n, e = [], 0, 0
        current.append(g)
        n += g.n_node
        e += g.n_edge
    if current:
        yield collate(current, max_nodes, max_edges, max_graphs, dtype=dtype)
