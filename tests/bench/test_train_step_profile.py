"""facet.bench.train_step_profile.edge_blocks reports the edge blocks that the traced message
passes of a model use (per layer: the first layer's messages have fewer irreps than the others)."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import facet
import tensorproducts.edge as tp_edge
from facet.bench.train_step_profile import edge_blocks
from facet.data import collate
from facet.data.neighbors import graph_from_atoms
from facet.physics import predict
from facet.structures import skewed_cell
from tensorproducts import edge_blocking

N_EDGES = 1024  # padded edges of the batch traced (above MIN_BLOCKED_EDGES: blocks on a CPU)


def _traced_blocks(model, monkeypatch) -> list[int]:
    """The blocks ``sum_over_edges`` chooses while the model's energy is traced."""
    seen = []
    choose = tp_edge.edge_block_size

    def recorded(*args):
        seen.append(choose(*args))
        return seen[-1]

    graph = graph_from_atoms(skewed_cell(), model.cutoff, labels_from_calc=False)
    batch = collate([graph], 8, N_EDGES, 2, dtype=np.float32)
    with monkeypatch.context() as m:
        m.setattr(tp_edge, "edge_block_size", recorded)
        jax.eval_shape(lambda b: predict(model, b, forces=False, stress=False).energy, batch)
    return seen


@pytest.mark.parametrize("preset, first, hidden", [("facet-s", 64, 64), ("facet-m", 32, 16)])
def test_edge_blocks_are_the_blocks_traced(preset, first, hidden, monkeypatch):
    """On a CPU, blocks hold at most CPU_BLOCK_BYTES of messages: facet-s's ``9 x 72`` float32
    per edge gets 64, facet-m's ``32 x 96`` 16, and facet-m's first layer (scalars in: only the
    16 natural-parity components reachable) 32; 0 (one pass) elsewhere."""
    model = facet.create_model(preset, seed=0)
    blocks = edge_blocks(model, N_EDGES)
    assert blocks == _traced_blocks(model, monkeypatch)
    on_cpu = jax.default_backend() == "cpu"
    n = model.config.num_layers
    assert blocks == ([first] + [hidden] * (n - 1) if on_cpu else [0] * n)
    with edge_blocking(128):  # an override is what the trace uses too
        assert edge_blocks(model, N_EDGES) == [128] * n == _traced_blocks(model, monkeypatch)
