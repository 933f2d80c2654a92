"""Verlet ("skin") neighbour lists for compiled loops, jax-md style.

Inside ``jax.jit`` shapes are static, so a loop cannot rebuild its neighbour list. Instead the
list is built outside the loop at ``cutoff + skin`` into a buffer of fixed edge capacity (with
headroom), and the loop

* masks edges longer than ``cutoff`` at every step (``edge_mask &= |r_ij| < cutoff``), so the
  model always sees exactly the pairs within its cutoff; and
* leaves as soon as the list may be missing a pair (:func:`list_is_valid`), after which the caller
  rebuilds it outside ``jit`` (growing the capacity when the new list no longer fits, which is
  the only time a loop recompiles).

Validity criterion. Let ``x^0``, ``C^0`` be positions and cell when the list was built and
``F = (C^{0\\,-1} C)^T`` the deformation since then (identity at fixed cell). A pair missing from
the list had ``|r^0| >= r_c + skin``. Writing ``x_i = F s_i`` and ``d_i = |s_i - x^0_i|``,

.. math::  |r_{ij}| = |F (r^0_{ij} + (s_j - x^0_j) - (s_i - x^0_i))|
           \\ge \\sigma_{\\min}(F)\\,(r_c + \\mathrm{skin} - 2 \\max_i d_i),

so the list is complete while ``sigma_min(F) (r_c + skin - 2 max d) >= r_c`` in every graph.
This holds for any cell, including cells smaller than the cutoff (multiple images are in the
list as separate edges with their integer shifts).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ..data.batch import Graph, GraphBatch, collate
from ..data.neighbors import neighbor_list
from ..nn.model import edge_vectors as _edge_vectors

__all__ = [
    "edge_vectors",
    "build_graphs",
    "padded_batch",
    "mask_edges",
    "list_is_valid",
    "capacity_for",
]


def edge_vectors(batch: GraphBatch) -> jax.Array:
    """``r_ij = x_j + S_e C_g - x_i`` for every edge of ``batch`` (padding edges give 0): the
    model's own :func:`facet.nn.model.edge_vectors`, with shifts and cell in the positions'
    dtype."""
    pos = jnp.asarray(batch.positions)
    return _edge_vectors(pos, jnp.asarray(batch.cell, pos.dtype),
                         jnp.asarray(batch.shifts, pos.dtype), batch.senders, batch.receivers,
                         jnp.asarray(batch.node_graph))


def build_graphs(
    positions: Sequence[np.ndarray],
    numbers: Sequence[np.ndarray],
    cells: Sequence[np.ndarray],
    pbcs: Sequence[np.ndarray],
    radius: float,
    keys: Sequence[str] | None = None,
) -> list[Graph]:
    """One :class:`~facet.data.Graph` per structure with every pair within ``radius``."""
    graphs = []
    for k, (x, z, c, p) in enumerate(zip(positions, numbers, cells, pbcs, strict=True)):
        s, r, sh = neighbor_list(x, c, p, radius)
        graphs.append(
            Graph(
                positions=np.asarray(x, np.float64),
                numbers=np.asarray(z, np.int64),
                cell=np.asarray(c, np.float64),
                pbc=np.asarray(p, bool),
                senders=s,
                receivers=r,
                shifts=sh,
                key=keys[k] if keys else str(k),
            )
        )
    return graphs


#: Edge capacities are whole multiples of this (the CPU edge block of
#: :func:`facet.nn.interaction.edge_block_size`, and a friendly size for accelerators).
CAPACITY_MULTIPLE = 128


def capacity_for(n_edges: int, headroom: float = 0.1) -> int:
    """Edge capacity for ``n_edges`` with ``headroom`` slack (and one padding edge), rounded up
    to a multiple of :data:`CAPACITY_MULTIPLE`. Not the geometric bucket ladder of
    :func:`facet.data.bucket_size`: its steps of 25 % would add up to a quarter more padded
    edges to every step of a loop whose node count is exact anyway (so its compiled program is
    not shared with other structure sets); the headroom alone absorbs the slow growth of the
    neighbour count during a relaxation or an MD run."""
    need = int(math.ceil(n_edges * (1.0 + headroom))) + 1
    return -(-need // CAPACITY_MULTIPLE) * CAPACITY_MULTIPLE


def padded_batch(
    graphs: Sequence[Graph], edge_capacity: int, *, n_node_pad: int | None = None, dtype="float32"
) -> GraphBatch:
    """Collate with the node count fixed (one padding node) and edges padded to the capacity."""
    n = sum(g.n_node for g in graphs)
    return collate(
        graphs,
        n_node_pad or n + 1,
        edge_capacity,
        len(graphs) + 1,
        dtype=np.dtype(dtype),
    )


def mask_edges(batch: GraphBatch, base_mask: jax.Array, cutoff: float) -> GraphBatch:
    """The batch with only the listed edges shorter than ``cutoff`` switched on."""
    vec = edge_vectors(batch._replace(edge_mask=base_mask))
    d2 = jnp.sum(vec**2, axis=-1)
    return batch._replace(edge_mask=base_mask & (d2 < cutoff * cutoff))


def list_is_valid(
    positions: jax.Array,
    cell: jax.Array,
    ref_positions: jax.Array,
    ref_cell: jax.Array,
    node_graph: jax.Array,
    node_mask: jax.Array,
    cell_moves: jax.Array,
    cutoff: float,
    skin: float,
) -> jax.Array:
    """Whether a list built at ``(ref_positions, ref_cell)`` still holds every pair (see module).

    ``cell_moves`` ``(G,)`` marks the graphs whose cell may have changed (full periodic cells in a
    variable-cell relaxation); the others use ``F = I``.
    """
    g = cell.shape[0]
    eye = jnp.broadcast_to(jnp.eye(3, dtype=cell.dtype), (g, 3, 3))
    safe_ref = jnp.where(cell_moves[:, None, None], ref_cell, eye)
    safe_cur = jnp.where(cell_moves[:, None, None], cell, eye)
    # Rows convention: C = C0 F^T  =>  F^T = C0^{-1} C.
    ft = jnp.linalg.solve(safe_ref, safe_cur)
    f = jnp.swapaxes(ft, -1, -2)
    smin = jnp.sqrt(jnp.clip(jnp.linalg.eigvalsh(ft @ f)[:, 0], 0.0))
    s = jnp.einsum("nij,nj->ni", jnp.linalg.inv(f)[node_graph], positions)
    disp = jnp.where(node_mask, jnp.linalg.norm(s - ref_positions, axis=-1), 0.0)
    dmax = jax.ops.segment_max(disp, node_graph, num_segments=g)
    dmax = jnp.maximum(dmax, 0.0)  # empty segments give -inf
    return jnp.all(smin * (cutoff + skin - 2.0 * dmax) >= cutoff)
