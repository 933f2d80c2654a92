"""Run in a subprocess with two host devices (XLA_FLAGS must be set before JAX starts):
compare a data-parallel step with a single-device step on the union of the per-device batches.
Prints one JSON line with the maximal differences."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))


def main() -> None:
    import jax
    import jax.numpy as jnp
    import numpy as np
    from toymodel import PairModel, labelled_graphs, toy_predict

    from facet.data.batch import collate
    from facet.train.batching import Budget, EpochBatcher, stack_batches
    from facet.train.config import LossSection, OptimSection
    from facet.train.optim import make_optimizer
    from facet.train.parallel import host_slots, make_mesh, put_batch, replicate, to_host
    from facet.train.step import init_state, make_loss_fn, make_step_fns, split_model

    assert jax.device_count() == 2, jax.devices()
    teacher = PairModel(seed=5, dtype=jnp.float64)
    graphs = labelled_graphs(10, teacher, seed=2)
    model = PairModel(seed=0, dtype=jnp.float64)
    graphdef, params, rest = split_model(model)
    loss_cfg = LossSection(energy_kind="mse", forces_kind="huber", stress_kind="mae",
                           huber_delta=0.05, stress_weight=1.0)
    budget = Budget(20, 800, 5)
    mesh = make_mesh()
    batcher = EpochBatcher(graphs, budget, seed=0, n_devices=2, device_slots=host_slots(mesh))
    packs = batcher.global_indices(0, 0)
    assert all(p.size for p in packs)
    sharded = put_batch(batcher.local_batch(0, 0), mesh)
    n_dev_batch = len(sharded.positions.sharding.device_set)

    union = [graphs[i] for p in packs for i in p]
    single = stack_batches([collate(union, 64, 2400, 16)])
    single = jax.device_put(jax.tree.map(jnp.asarray, single), jax.devices()[0])

    loss_fn, _ = make_loss_fn(graphdef, loss_cfg, predict_fn=toy_predict)
    grad = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))
    (l2, e2), g2 = grad(replicate(params, mesh), replicate(rest, mesh), sharded)
    (l1, e1), g1 = grad(params, rest, single)

    tx = make_optimizer(OptimSection(lr=1e-2, warmup_steps=0), 10)
    step, _ = make_step_fns(graphdef, tx, loss_cfg, ema_decay=0.9, predict_fn=toy_predict)
    step = jax.jit(step)
    s2, _ = step(replicate(init_state(params, tx), mesh), replicate(rest, mesh), sharded)
    s1, _ = step(init_state(params, tx), rest, single)

    def maxdiff(a, b):
        return max(float(np.max(np.abs(np.asarray(x) - np.asarray(y))))
                   for x, y in zip(jax.tree.leaves(to_host(a)), jax.tree.leaves(to_host(b)),
                                   strict=True))

    gmax = max(float(np.max(np.abs(np.asarray(x)))) for x in jax.tree.leaves(to_host(g1)))
    print(json.dumps({
        "devices": jax.device_count(),
        "batch_devices": n_dev_batch,
        "param_sharding_replicated": bool(s2.params["w"].get_value().sharding.is_fully_replicated),
        "loss": [float(l1), float(l2)],
        "grad_max": gmax,
        "grad_diff": maxdiff(g1, g2),
        "errsum_diff": maxdiff(e1, e2),
        "state_diff": maxdiff(s1.params, s2.params),
        "n_struct": [int(p.size) for p in packs],
    }))


if __name__ == "__main__":
    main()
