"""Deterministic, resumable, device- and host-sharded batching for training.

Every batch of a run has the same padded shape ``(max_nodes, max_edges, max_graphs)`` (one
compilation per run). A *global step* consumes ``D`` packed batches, one per device of the whole
job (all hosts); they are stacked along a leading device axis and sharded over it.

Determinism: the order of epoch ``e`` is ``default_rng([seed, e]).permutation(n)`` (or the
identity without shuffling), packed greedily in that order under the budget exactly as
:func:`facet.data.batch.batches_by_budget` does. The plan depends only on ``(seed, epoch)`` and
the structure sizes, so every host computes the same plan and takes the slots of its own devices,
and the data position of a run is fully described by ``(epoch, step_in_epoch)``: resuming at a
position reproduces the remaining batches exactly. The last global step of an epoch is completed
with empty (all-padding) batches, which contribute nothing to sums: no structure is dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from facet.data.batch import Graph, GraphBatch, collate, pack_indices

__all__ = ["Budget", "pack_indices", "empty_batch", "stack_batches", "EpochBatcher",
           "edge_pads"]


@dataclass(frozen=True)
class Budget:
    """Padded batch shape; ``max_nodes`` and ``max_graphs`` include one padding slot each."""

    max_nodes: int
    max_edges: int
    max_graphs: int

    def check(self, graphs: Sequence[Graph], n_nodes: np.ndarray, n_edges: np.ndarray) -> None:
        """Raise naming the first structure that cannot fit a batch on its own."""
        bad = np.flatnonzero((n_nodes + 1 > self.max_nodes) | (n_edges > self.max_edges))
        if bad.size:
            g = graphs[int(bad[0])]
            from .config import ConfigError

            key = "data.max_nodes" if g.n_node + 1 > self.max_nodes else "data.max_edges"
            raise ConfigError(
                    f"config key '{key}': structure {g.key or '?'} ({g.n_node} atoms, {g.n_edge} "
                    f"edges) does not fit the batch budget data.max_nodes={self.max_nodes} (one "
                    f"node is padding), data.max_edges={self.max_edges}; raise the budget"
                )


def edge_pads(edge_totals, max_edges: int, buckets: int = 1, quantum: int = 128) -> tuple[int, ...]:
    """Padded edge counts a batch may take: the ``k / buckets`` quantiles (``k = 1 ..
    buckets - 1``) of ``edge_totals`` (the real edges of the batches of an epoch) rounded up to a
    multiple of ``quantum``, and ``max_edges``.

    A batch is padded to the smallest size that holds its edges, so less of the step's work
    goes to padding edges, at the price of one compilation per size. Padding edges contribute
    exactly zero to every sum, so the loss and its gradients do not depend on the size chosen
    (only the order of floating-point sums changes)."""
    if buckets < 1:
        raise ValueError(f"edge buckets must be >= 1, got {buckets}")
    sizes = {int(max_edges)}
    totals = np.asarray(edge_totals, dtype=float)
    if buckets > 1 and totals.size:
        for k in range(1, buckets):
            q = float(np.quantile(totals, k / buckets))
            sizes.add(min(int(max_edges), int(-(-q // quantum) * quantum)))
    return tuple(sorted(sizes))


def empty_batch(budget: Budget, dtype=np.float64) -> GraphBatch:
    """A batch of pure padding (every mask False) following the conventions of
    :mod:`facet.data.batch`: all nodes and edges belong to the last graph slot."""
    N, E, G = budget.max_nodes, budget.max_edges, budget.max_graphs
    n_node = np.zeros((G,), np.int32)
    n_node[-1] = N
    n_edge = np.zeros((G,), np.int32)
    n_edge[-1] = E
    f = lambda *s: np.zeros(s, dtype)
    b = lambda *s: np.zeros(s, bool)
    return GraphBatch(
        positions=f(N, 3), numbers=np.zeros((N,), np.int32),
        node_graph=np.full((N,), G - 1, np.int32), node_mask=b(N),
        senders=np.full((E,), N - 1, np.int32), receivers=np.full((E,), N - 1, np.int32),
        shifts=f(E, 3), edge_mask=b(E), cell=np.tile(np.eye(3, dtype=dtype), (G, 1, 1)),
        pbc=b(G, 3), n_node=n_node, n_edge=n_edge, graph_mask=b(G), energy=f(G),
        forces=f(N, 3), stress=f(G, 3, 3), energy_mask=b(G), forces_mask=b(G), stress_mask=b(G),
        weight=f(G),
    )


def stack_batches(batches: Sequence[GraphBatch]) -> GraphBatch:
    """Stack same-shape batches along a new leading (device) axis."""
    return GraphBatch(*(np.stack(fields) for fields in zip(*batches, strict=True)))


class EpochBatcher:
    """Plans and builds the batches of every epoch for the devices of one host.

    Args:
        graphs: the structures (a sequence; only the ones this host needs are accessed).
        budget: the padded batch shape.
        seed, shuffle: the per-epoch order (see module docstring).
        n_devices: devices of the whole job (``jax.device_count()``).
        device_slots: the global slots this host fills (``range(p * local, (p + 1) * local)``
            for process ``p``); defaults to all slots (single host).
        dtype: float dtype of the batches.
        edge_buckets: pad each step's batches to the smallest of :func:`edge_pads` sizes
            (fitted to the first epoch's batches) that holds the edges of every device slot of
            the step (1: always ``budget.max_edges``). Every host computes the same size (from
            the global plan), so the shards of a global step agree.
    """

    def __init__(self, graphs: Sequence[Graph], budget: Budget, *, seed: int = 0,
                 shuffle: bool = True, n_devices: int = 1,
                 device_slots: Sequence[int] | None = None, dtype=np.float64,
                 edge_buckets: int = 1):
        if len(graphs) == 0:
            raise ValueError("no structures to batch")
        # Lazy sources (facet.train.data.ShardedGraphs) provide sizes and a shard-blocked order.
        sizes = getattr(graphs, "n_nodes", None)
        self._n_nodes = np.asarray(sizes if sizes is not None else [g.n_node for g in graphs])
        sizes = getattr(graphs, "n_edges", None)
        self._n_edges = np.asarray(sizes if sizes is not None else [g.n_edge for g in graphs])
        budget.check(graphs, self._n_nodes, self._n_edges)
        self.graphs = graphs
        self.budget = budget
        self.seed = int(seed)
        self.shuffle = bool(shuffle)
        self.n_devices = int(n_devices)
        self.device_slots = list(range(n_devices) if device_slots is None else device_slots)
        self.dtype = dtype
        self._plans: dict[int, list[np.ndarray]] = {}
        totals = [self._n_edges[p].sum() for p in self.plan(0)] if edge_buckets > 1 else []
        self.edge_pads = edge_pads(totals, budget.max_edges, edge_buckets)

    def order(self, epoch: int) -> np.ndarray:
        n = len(self.graphs)
        if not self.shuffle:
            return np.arange(n)
        if hasattr(self.graphs, "order"):
            return self.graphs.order(self.seed, int(epoch))
        return np.random.default_rng([self.seed, int(epoch)]).permutation(n)

    def plan(self, epoch: int) -> list[np.ndarray]:
        """Packed batches (arrays of structure indices) of ``epoch``, padded with empty packs
        to a multiple of ``n_devices``."""
        if epoch not in self._plans:
            packs = pack_indices(self.order(epoch), self._n_nodes, self._n_edges, self.budget)
            short = -len(packs) % self.n_devices
            packs += [np.zeros((0,), int)] * short
            if len(self._plans) > 4:
                self._plans.pop(min(self._plans))
            self._plans[epoch] = packs
        return self._plans[epoch]

    def sizes(self, idx: np.ndarray) -> tuple[int, int]:
        """Real structures and atoms of a set of structure indices."""
        return int(idx.size), int(self._n_nodes[idx].sum()) if idx.size else 0

    def steps_in_epoch(self, epoch: int) -> int:
        return len(self.plan(epoch)) // self.n_devices

    def total_steps(self, epochs: int) -> int:
        return sum(self.steps_in_epoch(e) for e in range(epochs))

    def position(self, global_step: int) -> tuple[int, int]:
        """``(epoch, step_in_epoch)`` of a global step counted from the start of the run."""
        epoch = 0
        while global_step >= (k := self.steps_in_epoch(epoch)):
            global_step -= k
            epoch += 1
        return epoch, global_step

    def _collate(self, idx: np.ndarray, n_edges: int) -> GraphBatch:
        b = self.budget
        if idx.size == 0:
            return empty_batch(Budget(b.max_nodes, n_edges, b.max_graphs), self.dtype)
        return collate([self.graphs[int(i)] for i in idx], b.max_nodes, n_edges,
                       b.max_graphs, dtype=self.dtype)

    def edge_pad(self, epoch: int, step: int) -> int:
        """Padded edge count of one global step (see ``edge_buckets``)."""
        need = max(int(self._n_edges[p].sum()) if p.size else 0
                   for p in self.global_indices(epoch, step))
        return next(e for e in self.edge_pads if e >= need)

    def local_batch(self, epoch: int, step: int) -> GraphBatch:
        """This host's stacked batch ``(len(device_slots), ...)`` for one global step."""
        packs = self.plan(epoch)
        base = step * self.n_devices
        pad = self.edge_pad(epoch, step) if len(self.edge_pads) > 1 else self.budget.max_edges
        return stack_batches([self._collate(packs[base + s], pad) for s in self.device_slots])

    def global_indices(self, epoch: int, step: int) -> list[np.ndarray]:
        """Structure indices of every device slot of one global step (for tests and logs)."""
        packs = self.plan(epoch)
        return packs[step * self.n_devices:(step + 1) * self.n_devices]


def fixed_batches(graphs: Sequence[Graph], budget: Budget, *, n_devices: int = 1,
                  device_slots: Sequence[int] | None = None, dtype=np.float64):
    """All of ``graphs`` in order (validation / evaluation), as stacked per-host batches."""
    batcher = EpochBatcher(graphs, budget, shuffle=False, n_devices=n_devices,
                           device_slots=device_slots, dtype=dtype)
    for s in range(batcher.steps_in_epoch(0)):
        yield batcher.local_batch(0, s)
