"""One process of a two-process JAX job on this machine (started by ``test_multihost.py``).

The environment names the coordinator and this process (``JAX_COORDINATOR_ADDRESS``,
``JAX_NUM_PROCESSES=2``, ``JAX_PROCESS_ID``); :func:`facet.train.parallel.
maybe_initialize_distributed` starts JAX's distributed runtime exactly as ``facet train`` does.
Each process owns one CPU device and fills only its own batch slot; the data-parallel gradient
and training step (AdamW + EMA) are compared with a single-device step on the union of both
slots, computed locally in this process. Prints one JSON line.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))


def main() -> None:
    import jax

    from facet.train.parallel import maybe_initialize_distributed

    assert maybe_initialize_distributed("auto")
    import jax.numpy as jnp
    import numpy as np
    from toymodel import PairModel, labelled_graphs, toy_predict

    from facet.data.batch import collate
    from facet.train.batching import Budget, EpochBatcher, stack_batches
    from facet.train.config import LossSection, OptimSection
    from facet.train.optim import make_optimizer
    from facet.train.parallel import host_slots, make_mesh, put_batch, replicate, to_host
    from facet.train.step import init_state, make_loss_fn, make_step_fns, split_model

    teacher = PairModel(seed=5, dtype=jnp.float64)
    graphs = labelled_graphs(10, teacher, seed=2)
    model = PairModel(seed=0, dtype=jnp.float64)
    graphdef, params, rest = split_model(model)
    loss_cfg = LossSection(
        energy_kind="mse",
        forces_kind="huber",
        stress_kind="mae",
        huber_delta=0.05,
        stress_weight=1.0,
    )
    mesh = make_mesh()
    slots = host_slots(mesh)
    batcher = EpochBatcher(graphs, Budget(20, 800, 5), seed=0, n_devices=2, device_slots=slots)
    packs = batcher.global_indices(0, 0)
    local = batcher.local_batch(0, 0)
    sharded = put_batch(local, mesh)

    # Reference: the union of both hosts' structures on this process's own device.
    union = [graphs[i] for p in packs for i in p]
    single = stack_batches([collate(union, 64, 2400, 16)])
    single = jax.device_put(jax.tree.map(jnp.asarray, single), jax.local_devices()[0])
    local_params = jax.device_put(params, jax.local_devices()[0])
    local_rest = jax.device_put(rest, jax.local_devices()[0])

    loss_fn, _ = make_loss_fn(graphdef, loss_cfg, predict_fn=toy_predict)
    grad = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))
    (l2, e2), g2 = grad(replicate(params, mesh), replicate(rest, mesh), sharded)
    (l1, e1), g1 = grad(local_params, local_rest, single)

    tx = make_optimizer(OptimSection(lr=1e-2, warmup_steps=0), 10)
    step, _ = make_step_fns(graphdef, tx, loss_cfg, ema_decay=0.9, predict_fn=toy_predict)
    step = jax.jit(step)
    s2, _ = step(replicate(init_state(params, tx), mesh), replicate(rest, mesh), sharded)
    s1, _ = step(jax.device_put(init_state(params, tx), jax.local_devices()[0]), local_rest, single)

    def maxdiff(a, b):
        return max(
            float(np.max(np.abs(np.asarray(x) - np.asarray(y))))
            for x, y in zip(jax.tree.leaves(to_host(a)), jax.tree.leaves(to_host(b)), strict=True)
        )

    gmax = max(float(np.max(np.abs(np.asarray(x)))) for x in jax.tree.leaves(to_host(g1)))
    print(
        json.dumps(
            {
                "process": jax.process_index(),
                "processes": jax.process_count(),
                "devices": jax.device_count(),
                "local_devices": jax.local_device_count(),
                "slots": slots,
                "local_structures": int(local.graph_mask.sum()),
                "n_struct": [int(p.size) for p in packs],
                "loss": [float(l1), float(to_host(l2))],
                "grad_max": gmax,
                "grad_diff": maxdiff(g1, g2),
                "errsum_diff": maxdiff(e1, e2),
                "state_diff": maxdiff(s1.params, s2.params),
                "ema_diff": maxdiff(s1.ema, s2.ema),
            }
        ),
        flush=True,
    )
    jax.distributed.shutdown()


if __name__ == "__main__":
    main()
