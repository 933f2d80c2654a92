"""Compile-time memory of the training step (XLA's ``memory_analysis``), without running it.

    taskset -c 0 python scripts/train_step_memory.py --preset facet-m --budget 129 4096 9

Builds the step of ``facet train`` (facet/train/step.py ``make_step_fns``, jitted with the state
donated, through ``facet.bench.train_step_profile.build``) for the training split of
``data/distill`` at the given budget (max nodes, max edges, max graphs) and dtype, compiles it
for one padded batch and prints XLA's compile-time memory analysis: temporaries
(``temp_size_in_bytes``: what the step's intermediates need at their peak), arguments, outputs,
aliases (donated buffers reused for outputs) and their total. ``--edge-block N`` traces the
message pass in blocks of ``N`` edges (0: one pass; default: the CPU's choice, sized by each
layer's message bytes, ``tensorproducts.edge.CPU_BLOCK_BYTES``; the report gives each layer's
block, ``facet.bench.train_step_profile.edge_blocks``); ``--edge-vjp autodiff`` differentiates
the blocked pass by plain autodiff of its checkpointed scan (as before its custom reverse pass;
``tensorproducts.edge_vjp``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="data/distill")
    ap.add_argument("--preset", default="facet-m")
    ap.add_argument("--budget", nargs=3, type=int, default=[129, 4096, 9],
                    metavar=("MAX_NODES", "MAX_EDGES", "MAX_GRAPHS"))
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--limit", type=int, default=100, help="training frames for E0s and batches")
    ap.add_argument("--edge-block", type=int, default=None)
    ap.add_argument("--edge-vjp", default="custom", choices=["custom", "autodiff"])
    ap.add_argument("--out", default="")
    args = ap.parse_args()

    import jax

    if args.dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    from facet.bench.scaling import memory_analysis
    from facet.bench.train_step_profile import build, edge_blocks
    from tensorproducts import edge_blocking, edge_vjp

    ctx = build(args.data, tuple(args.budget), args.limit, args.preset, args.dtype)
    batch = ctx["put_batch"](ctx["batcher"].local_batch(0, 0), ctx["mesh"])
    fn = jax.jit(ctx["train_step"], donate_argnums=(0,))
    t0 = time.perf_counter()
    with contextlib.ExitStack() as stack:
        if args.edge_block is not None:
            stack.enter_context(edge_blocking(args.edge_block))
        stack.enter_context(edge_vjp(args.edge_vjp))
        blocks = edge_blocks(ctx["model"], batch.edge_mask.shape[-1])
        compiled = fn.lower(ctx["state"], ctx["rest"], batch).compile()
    mem = memory_analysis(compiled)
    out = {"preset": args.preset, "budget": args.budget, "dtype": args.dtype,
           "edge_blocks": blocks, "edge_vjp": args.edge_vjp,
           "compile_s": round(time.perf_counter() - t0, 1), "jax": jax.__version__, **mem}
    print(json.dumps(out, indent=1))
    print(f"{args.preset} {'/'.join(map(str, args.budget))} {args.dtype} "
          f"blocks {'/'.join(map(str, blocks))} "
          f"{args.edge_vjp} VJP: "
          f"temp {mem['temp_bytes'] / 1e9:.3f} GB, total {mem['xla_total_bytes'] / 1e9:.3f} GB")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
