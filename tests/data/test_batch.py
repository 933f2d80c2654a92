"""Padded batches: the bucket ladder, padding conventions, and masks under which padding contributes
nothing to energies or forces (float64 finite differences), with one compilation per bucket."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk, molecule

from facet.data.batch import batches_by_budget, bucket_size, collate, pad_sizes
from facet.data.neighbors import graph_from_atoms

CUTOFF = 3.5


def test_bucket_ladder_is_tight_and_logarithmic():
    sizes = {bucket_size(n) for n in range(1, 100_001)}
    assert len(sizes) < 50  # a handful of shapes to compile, not one per size
    for n in [1, 7, 8, 9, 100, 1234, 99_999]:
        b = bucket_size(n)
        assert b >= n and b % 8 == 0
        assert b <= max(8, 1.25 * n + 8)  # at most 25 % padding (plus rounding to 8)
    graphs = _graphs()
    n = sum(g.n_node for g in graphs)
    e = sum(g.n_edge for g in graphs)
    n_pad, e_pad, g_pad = pad_sizes(graphs, headroom=0.1)
    assert n_pad >= np.ceil(1.1 * n) + 1 and e_pad >= np.ceil(1.1 * e) and g_pad == len(graphs) + 1


def _graphs():
    out = []
    for k, atoms in enumerate([bulk("Si", "diamond", a=5.43), bulk("NaCl", "rocksalt", a=5.64),
                               molecule("H2O"), bulk("Cu", "fcc", a=3.6) * (2, 1, 1)]):  # fmt: skip
        atoms = atoms.copy()
        atoms.rattle(0.05, seed=k)
        out.append(graph_from_atoms(atoms, CUTOFF, energy=-1.0 * k, key=f"m{k}/0"))
    return out


def test_padding_conventions():
    graphs = _graphs()
    n_pad, e_pad, g_pad = pad_sizes(graphs, headroom=0.1)
    b = collate(graphs, n_pad, e_pad, g_pad)
    n_real = sum(g.n_node for g in graphs)
    e_real = sum(g.n_edge for g in graphs)
    assert b.node_mask.sum() == n_real and b.edge_mask.sum() == e_real
    assert b.graph_mask.tolist() == [True] * len(graphs) + [False] * (g_pad - len(graphs))
    assert np.all(b.node_graph[~b.node_mask] == g_pad - 1)  # padding nodes: last graph slot
    assert np.all(b.senders[~b.edge_mask] == n_pad - 1)  # padding edges: last (padding) node
    assert np.all(b.receivers[~b.edge_mask] == n_pad - 1)
    assert np.all(b.numbers[~b.node_mask] == 0) and np.all(b.weight[~b.graph_mask] == 0)
    assert b.n_node.sum() == n_pad and b.n_edge.sum() == e_pad
    np.testing.assert_allclose(np.linalg.det(b.cell[~b.graph_mask]), 1.0)  # finite volumes


def _pair_energy(b):
    """A smooth pair potential summed per graph with every mask applied (as a model would)."""
    import jax
    import jax.numpy as jnp

    cell_e = b.cell[b.node_graph[b.receivers]]
    vec = (
        b.positions[b.senders]
        + jnp.einsum("ei,eij->ej", b.shifts, cell_e)
        - b.positions[b.receivers]
    )
    r2 = jnp.where(b.edge_mask, jnp.sum(vec * vec, axis=1), 1.0)
    r = jnp.sqrt(r2)
    phi = jnp.where(b.edge_mask, (1 - r / CUTOFF) ** 3 * jnp.exp(-r), 0.0)
    e_graph = 0.5 * jax.ops.segment_sum(phi, b.node_graph[b.receivers], b.cell.shape[0])
    return e_graph * b.graph_mask


def test_masked_energy_and_forces_ignore_padding(x64):
    import jax
    import jax.numpy as jnp

    graphs = _graphs()
    traces = []

    def total(pos, b):
        traces.append(1)
        return jnp.sum(_pair_energy(b._replace(positions=pos)))

    grad = jax.jit(jax.value_and_grad(total))
    small = collate(graphs)  # default pad_sizes
    big = collate(graphs, *[2 * s for s in pad_sizes(graphs)])  # much more padding
    e_small, f_small = grad(jnp.asarray(small.positions), jax.tree.map(jnp.asarray, small))
    e_big, f_big = grad(jnp.asarray(big.positions), jax.tree.map(jnp.asarray, big))
    assert float(e_small) == pytest.approx(float(e_big), rel=1e-14)
    n = int(small.node_mask.sum())
    np.testing.assert_allclose(f_small[:n], f_big[:n], rtol=1e-12, atol=1e-14)
    assert np.all(np.asarray(f_big)[~big.node_mask] == 0.0)  # nothing flows into padding
    # Central finite differences (float64) on real atoms confirm the gradient itself.
    fn = jax.jit(lambda pos: total(pos, jax.tree.map(jnp.asarray, small)))
    pos0 = np.asarray(small.positions)
    h = 1e-5
    for i, k in [(0, 0), (3, 2), (n - 1, 1)]:
        dp = np.zeros_like(pos0)
        dp[i, k] = h
        fd = (float(fn(pos0 + dp)) - float(fn(pos0 - dp))) / (2 * h)
        assert fd == pytest.approx(float(f_small[i, k]), rel=1e-6, abs=1e-9)
    # Same shape -> no new compilation: a different set of graphs in the same bucket.
    n_traces = len(traces)
    other = collate(graphs[::-1], *pad_sizes(graphs))
    grad(jnp.asarray(other.positions), jax.tree.map(jnp.asarray, other))
    assert len(traces) == n_traces


def test_batches_by_budget_keeps_every_graph_once():
    graphs = _graphs() * 5
    budget = dict(max_nodes=40, max_edges=1200, max_graphs=5)
    batches = list(batches_by_budget(graphs, **budget))
    keys = [k for b in batches for k in np.flatnonzero(b.graph_mask)]
    assert len(keys) == len(graphs)
    assert {b.positions.shape for b in batches} == {(40, 3)}  # one shape for the epoch
    energies = np.concatenate([b.energy[b.graph_mask] for b in batches])
    np.testing.assert_array_equal(energies, [g.energy for g in graphs])
    with pytest.raises(ValueError, match="m3/0.*does not fit"):
        list(batches_by_budget(graphs, max_nodes=40, max_edges=20, max_graphs=5))
