"""Cost split of one facet-s training step on the default recipe's CPU batches (docs/training.md).

    taskset -c 0 python scripts/profile_train_step.py --data data/distill --rounds 7
    python -m facet.bench.train_step_profile ...     # the same, from an installed Facet

Builds the step of ``facet train`` (facet/train/step.py) for the training split of
``data/distill`` (``splits.json``) at the CPU batch shape of facet/train/configs/default.yaml
(113 nodes, 3,584 edges, 9 graph slots), then times, as separately jitted programs on the same
batches, in interleaved rounds (every part once per round, in turn, so that a load change on a
shared machine hits all parts alike):

* ``energy``: the forward pass (energies only);
* ``energy_forces_stress``: forward + the force/stress backward (what the calculator runs);
* ``loss``: the same plus the loss;
* ``loss_grad``: the loss and its parameter gradient (forward, force backward, and the parameter
  backward through the force graph);
* ``optimizer``: clipping + AdamW update + apply, on given gradients;
* ``ema``: the EMA update;
* ``train_step``: the whole jitted step (donated state, as ``facet train`` runs it);
* ``host_batch``: building the padded batch on the host (``EpochBatcher.local_batch``);
* ``transfer``: ``put_batch`` (host -> device) of a built batch.

Padding waste: real nodes / edges / graphs over the padded shape, averaged over an epoch.
Writes JSON (``--out``) and prints a table of medians with the min-max spread over rounds.
:func:`build` is shared with ``scripts/ab_train_step.py`` and ``scripts/train_step_memory.py``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path


def load_train_graphs(data: str, cutoff: float, limit: int, seed: int = 0):
    """Graphs of the training split of a distillation folder (the first ``limit`` frames of a
    seeded shuffle; all when ``limit`` is 0)."""
    import numpy as np

    from facet.bench.accuracy import load_splits
    from facet.data.neighbors import graph_from_frame

    frames = load_splits(data)["train"]
    order = np.random.default_rng(seed).permutation(len(frames))
    if limit:
        order = order[:limit]
    return [graph_from_frame(frames[i], cutoff) for i in sorted(order)]


def build(data: str, budget, limit: int, preset: str = "facet-s", dtype: str = "float32"):
    import jax
    import numpy as np
    import optax

    from facet.train.batching import Budget, EpochBatcher
    from facet.train.config import ModelSection, load_config
    from facet.train.e0 import fit_atomic_energies, fit_scale_shift
    from facet.train.model_io import create_model_from_section
    from facet.train.optim import ema_update, make_optimizer
    from facet.train.parallel import host_slots, make_mesh, put_batch, replicate
    from facet.train.step import init_state, make_loss_fn, make_step_fns, split_model

    recipe = load_config(Path(__file__).resolve().parents[1] / "train/configs/default.yaml")
    optim, loss_cfg = recipe.optim, recipe.loss
    model = create_model_from_section(ModelSection(preset=preset, dtype=dtype))
    graphs = load_train_graphs(data, model.cutoff, limit)
    e0 = fit_atomic_energies(graphs)
    model.set_atomic_energies(e0)
    model.set_scale_shift(*fit_scale_shift(graphs, e0))
    graphdef, params, rest = split_model(model)
    tx = make_optimizer(optim, 10_000)
    train_step, _ = make_step_fns(graphdef, tx, loss_cfg, ema_decay=optim.ema_decay)
    mesh = make_mesh()
    fdt = np.float32 if dtype == "float32" else np.float64
    batcher = EpochBatcher(graphs, Budget(*budget), seed=0, n_devices=mesh.devices.size,
                           device_slots=host_slots(mesh), dtype=fdt)
    state = replicate(init_state(params, tx), mesh)
    rest = replicate(rest, mesh)
    loss_fn, _ = make_loss_fn(graphdef, loss_cfg)
    from facet.physics import predict

    def efs(params, rest, batch, forces=True):
        from flax import nnx

        def one(b):
            out = predict(nnx.merge(graphdef, params, rest), b, forces=forces, stress=forces)
            return out.energy.sum() + (out.forces.sum() + out.stress.sum() if forces else 0.0)

        return jax.vmap(one)(batch).sum()

    def opt(grads, opt_state, params):
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    parts = {
        "energy": jax.jit(lambda p, r, b: efs(p, r, b, forces=False)),
        "energy_forces_stress": jax.jit(efs),
        "loss": jax.jit(lambda p, r, b: loss_fn(p, r, b)[0]),
        "loss_grad": jax.jit(lambda p, r, b: jax.grad(lambda q: loss_fn(q, r, b)[0])(p)),
        "optimizer": jax.jit(opt),
        "ema": jax.jit(lambda e, p, s: ema_update(e, p, optim.ema_decay, s)),
        "train_step": jax.jit(train_step, donate_argnums=(0,)),
    }
    return dict(parts=parts, train_step=train_step, efs=efs, state=state, rest=rest,
                batcher=batcher, mesh=mesh, put_batch=put_batch, graphs=graphs, budget=budget,
                model=model)


def edge_blocks(model, n_edges: int) -> list[int]:
    """Edges per block of each interaction layer's message pass over ``n_edges`` padded edges
    (0: one pass), as :func:`tensorproducts.edge.sum_over_edges` chooses them when traced here:
    :func:`tensorproducts.edge.edge_block_size` of the layer's message bytes per edge (channels x
    output irreps x item size; on a CPU, at most ``CPU_BLOCK_BYTES`` per block), or the block of
    an enclosing ``tensorproducts.edge_blocking``."""
    import numpy as np

    from tensorproducts.edge import edge_block_size

    itemsize = np.dtype(model.config.dtype).itemsize
    return [edge_block_size(n_edges, b.channels * b.msg.irreps_out.dim * itemsize)
            for b in model.blocks]


def padding(batcher, epoch: int = 0) -> dict:
    import numpy as np

    b = batcher.budget
    nodes, edges, graphs = [], [], []
    for idx in batcher.plan(epoch):
        nodes.append(int(batcher._n_nodes[idx].sum()) if idx.size else 0)
        edges.append(int(batcher._n_edges[idx].sum()) if idx.size else 0)
        graphs.append(int(idx.size))
    return {"batches": len(nodes), "nodes_fill": float(np.mean(nodes)) / b.max_nodes,
            "edges_fill": float(np.mean(edges)) / b.max_edges,
            "graphs_fill": float(np.mean(graphs)) / b.max_graphs,
            "mean_nodes": float(np.mean(nodes)), "mean_edges": float(np.mean(edges)),
            "mean_graphs": float(np.mean(graphs))}


def profile(ctx, rounds: int, per_round: int) -> dict:
    import jax

    parts, state, rest = ctx["parts"], ctx["state"], ctx["rest"]
    batcher, mesh, put_batch = ctx["batcher"], ctx["mesh"], ctx["put_batch"]
    n_b = batcher.steps_in_epoch(0)
    host = [batcher.local_batch(0, i) for i in range(min(n_b, per_round * 2))]
    dev = [put_batch(h, mesh) for h in host]
    params = state.params
    grads = parts["loss_grad"](params, rest, dev[0])
    times = {k: [] for k in [*parts, "host_batch", "transfer"]}
    # warm up (compile) every part
    for name, fn in parts.items():
        t0 = time.perf_counter()
        if name == "optimizer":
            jax.block_until_ready(fn(grads, state.opt_state, params))
        elif name == "ema":
            jax.block_until_ready(fn(state.ema, params, state.step))
        elif name == "train_step":
            state, _ = fn(state, rest, dev[0])
            jax.block_until_ready(state)
            params = state.params
        else:
            jax.block_until_ready(fn(params, rest, dev[0]))
        print(f"compiled {name}: {time.perf_counter() - t0:.1f} s", flush=True)
    k = 0
    for r in range(rounds):
        for name, fn in parts.items():
            t0 = time.perf_counter()
            for j in range(per_round):
                b = dev[(k + j) % len(dev)]
                if name == "optimizer":
                    out = fn(grads, state.opt_state, state.params)
                elif name == "ema":
                    out = fn(state.ema, state.params, state.step)
                elif name == "train_step":
                    state, out = fn(state, rest, b)
                else:
                    out = fn(state.params, rest, b)
                jax.block_until_ready(out)
            times[name].append((time.perf_counter() - t0) / per_round)
        t0 = time.perf_counter()
        for j in range(per_round):
            host[(k + j) % len(host)] = batcher.local_batch(0, (k + j) % n_b)
        times["host_batch"].append((time.perf_counter() - t0) / per_round)
        t0 = time.perf_counter()
        for j in range(per_round):
            jax.block_until_ready(put_batch(host[(k + j) % len(host)], mesh))
        times["transfer"].append((time.perf_counter() - t0) / per_round)
        k += per_round
        print(f"round {r + 1}/{rounds}: " + " ".join(
            f"{n}={1e3 * v[-1]:.1f}" for n, v in times.items()), flush=True)
    return {n: {"median_ms": 1e3 * statistics.median(v), "min_ms": 1e3 * min(v),
                "max_ms": 1e3 * max(v)} for n, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="data/distill")
    ap.add_argument("--budget", nargs=3, type=int, default=[113, 3584, 9],
                    metavar=("MAX_NODES", "MAX_EDGES", "MAX_GRAPHS"))
    ap.add_argument("--limit", type=int, default=400, help="training frames used (0: all)")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--per-round", type=int, default=3)
    ap.add_argument("--preset", default="facet-s")
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    import os

    import jax

    t0 = time.perf_counter()
    ctx = build(args.data, tuple(args.budget), args.limit, args.preset)
    print(f"built in {time.perf_counter() - t0:.1f} s: {len(ctx['graphs'])} structures", flush=True)
    pad = padding(ctx["batcher"])
    res = profile(ctx, args.rounds, args.per_round)
    out = {"preset": args.preset, "budget": args.budget, "padding": pad, "parts": res,
           "rounds": args.rounds, "per_round": args.per_round, "limit": args.limit,
           "jax": jax.__version__, "affinity": sorted(os.sched_getaffinity(0)),
           "edge_blocks": edge_blocks(ctx["model"], args.budget[1])}
    print(json.dumps(pad))
    print(f"{'part':22s} {'median ms':>10s} {'min-max':>16s}")
    for n, v in res.items():
        print(f"{n:22s} {v['median_ms']:10.1f} {v['min_ms']:7.1f}-{v['max_ms']:.1f}")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
