"""Interleaved A/B timing of training-step variants on the default recipe's CPU batches.

    taskset -c 0 python scripts/ab_train_step.py --variant block128:edge_block=128 \\
        --variant unblocked:edge_block=0 --rounds 9

Each ``--variant NAME:KEY=VALUE[,KEY=VALUE]`` is traced as its own jitted program in one process,
on the same batches and the same starting state (each variant its own copy, donated as in
``facet train``). ``edge_block=N`` traces the message pass in blocks of ``N`` edges (``0``: one
pass) through ``tensorproducts.edge_blocking``; other keys are environment variables set
while the variant is traced. The key ``edge_buckets=K`` instead pads the variant's batches to ``K``
fitted edge counts (``data.edge_buckets``; same packs, so the same structures per step), and
``remat=none|dots|nothing`` replaces ``jax.checkpoint`` while the variant is traced (the
blocked message pass checkpoints each block: ``none`` saves every intermediate, ``dots`` saves
the matrix products, ``nothing`` is the default recomputation), and ``edge_vjp=autodiff``
differentiates the blocked message pass by plain autodiff of its checkpointed scan (before its
custom reverse pass; ``tensorproducts.edge_vjp``), and ``cg_rule=paths`` traces ``cg-dense``'s
fused product with its earlier reverse rule (one batched ``dot`` per path, differentiated again
by plain autodiff; ``tensorproducts.cg_edge_rule``) instead of the closed contractions of today.
``--part energy_forces_stress`` times the forward pass with forces and stress (what the
calculator runs) instead of the step.
Rounds run every variant once in turn, in ABBA order (the order reverses every round),
``--per-round`` steps each; the report gives each variant's median step time with the min-max
over rounds and the median of the per-round ratios to the first variant with their spread.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import time
from pathlib import Path


def parse_variant(spec: str) -> tuple[str, dict[str, str]]:
    name, _, env = spec.partition(":")
    kv = dict(item.split("=", 1) for item in env.split(",") if item)
    return name, kv


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="data/distill")
    ap.add_argument("--budget", nargs=3, type=int, default=[113, 3584, 9])
    ap.add_argument("--limit", type=int, default=400)
    ap.add_argument("--preset", default="facet-s")
    ap.add_argument("--variant", action="append", required=True)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--per-round", type=int, default=2)
    ap.add_argument("--batches", type=int, default=8, help="batches of epoch 0 cycled through")
    ap.add_argument("--part", default="train_step",
                    choices=["train_step", "energy_forces_stress"])
    ap.add_argument("--out", default="")
    args = ap.parse_args()

    import jax

    from facet.bench.train_step_profile import build
    from tensorproducts import cg_edge_rule, edge_blocking, edge_vjp

    ctx = build(args.data, tuple(args.budget), args.limit, args.preset)
    batcher, mesh, put_batch = ctx["batcher"], ctx["mesh"], ctx["put_batch"]
    n_b = min(batcher.steps_in_epoch(0), args.batches)
    efs = args.part == "energy_forces_stress"
    step_fn = ctx["efs"] if efs else ctx["train_step"]
    variants = [parse_variant(v) for v in args.variant]
    fns, states = {}, {}
    from facet.train.batching import EpochBatcher

    dev = {}
    for name, env in variants:
        buckets = int(env.pop("edge_buckets", 1))
        b = batcher if buckets == 1 else EpochBatcher(
            batcher.graphs, batcher.budget, seed=batcher.seed, n_devices=batcher.n_devices,
            device_slots=batcher.device_slots, dtype=batcher.dtype, edge_buckets=buckets)
        dev[name] = [put_batch(b.local_batch(0, i), mesh) for i in range(n_b)]
        print(f"{name}: edge pads {b.edge_pads}, padded edges per batch "
              f"{sum(x.edge_mask.shape[-1] for x in dev[name]) / n_b:.0f}", flush=True)
    policies = {"none": None, "dots": jax.checkpoint_policies.dots_saveable,
                "nothing": jax.checkpoint_policies.nothing_saveable}
    remats = {name: env.pop("remat", "") for name, env in variants}
    blocks = {name: env.pop("edge_block", None) for name, env in variants}
    vjps = {name: env.pop("edge_vjp", "") for name, env in variants}
    cg_rules = {name: env.pop("cg_rule", "") for name, env in variants}
    for name in vjps:
        if vjps[name] not in ("", "autodiff"):
            raise SystemExit(f"{name}: edge_vjp must be autodiff, got {vjps[name]!r}")
        if cg_rules[name] not in ("", "paths", "closed"):
            raise SystemExit(f"{name}: cg_rule must be paths or closed, got {cg_rules[name]!r}")
    for name, env in variants:
        old = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        orig_checkpoint = jax.checkpoint
        if remats[name] == "none":
            jax.checkpoint = lambda f, **kw: f
        elif remats[name]:
            pol = policies[remats[name]]
            jax.checkpoint = lambda f, _p=pol, _c=orig_checkpoint, **kw: _c(f, policy=_p, **kw)
        try:
            # A new function object per variant: jit caches traces by function, and the
            # environment is read at trace time.
            if efs:
                fn = jax.jit(lambda s, r, b: (s, step_fn(s.params, r, b)))
            else:
                fn = jax.jit(lambda s, r, b: step_fn(s, r, b), donate_argnums=(0,))
            st = jax.tree.map(lambda x: x.copy(), ctx["state"])
            t0 = time.perf_counter()
            with contextlib.ExitStack() as stack:
                if blocks[name] is not None:
                    stack.enter_context(edge_blocking(int(blocks[name])))
                if vjps[name]:
                    stack.enter_context(edge_vjp(vjps[name]))
                if cg_rules[name]:
                    stack.enter_context(cg_edge_rule(cg_rules[name]))
                for shape in sorted({x.edge_mask.shape for x in dev[name]}):  # every pad
                    first = next(x for x in dev[name] if x.edge_mask.shape == shape)
                    st, _ = fn(st, ctx["rest"], first)
            jax.block_until_ready(st)
            print(f"{name}: compiled in {time.perf_counter() - t0:.1f} s", flush=True)
        finally:
            jax.checkpoint = orig_checkpoint
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        fns[name], states[name] = fn, st
    times = {name: [] for name, _ in variants}
    names = [n for n, _ in variants]
    k = 0
    for r in range(args.rounds):
        order = names if r % 2 == 0 else names[::-1]
        for name in order:
            st = states[name]
            t0 = time.perf_counter()
            for j in range(args.per_round):
                st, m = fns[name](st, ctx["rest"], dev[name][(k + j) % n_b])
            jax.block_until_ready(st)
            times[name].append((time.perf_counter() - t0) / args.per_round)
            states[name] = st
        k += args.per_round
        print(f"round {r + 1}: " + " ".join(f"{n}={1e3 * times[n][-1]:.0f}ms" for n in names),
              flush=True)
    base = names[0]
    res = {}
    for n in names:
        ratios = [b / t for b, t in zip(times[base], times[n], strict=True)]
        res[n] = {"median_ms": 1e3 * statistics.median(times[n]), "min_ms": 1e3 * min(times[n]),
                  "max_ms": 1e3 * max(times[n]), "speedup_vs_first": statistics.median(ratios),
                  "speedup_min": min(ratios), "speedup_max": max(ratios),
                  "env": dict(variants[names.index(n)][1])}
        print(f"{n:16s} {res[n]['median_ms']:8.1f} ms ({res[n]['min_ms']:.1f}-"
              f"{res[n]['max_ms']:.1f})  speed-up vs {base}: {res[n]['speedup_vs_first']:.3f} "
              f"({res[n]['speedup_min']:.3f}-{res[n]['speedup_max']:.3f})")
    if args.out:
        Path(args.out).write_text(json.dumps({"part": args.part, "budget": args.budget,
                                              "rounds": args.rounds,
                                              "per_round": args.per_round, "variants": res,
                                              "affinity": sorted(os.sched_getaffinity(0))},
                                             indent=1))


if __name__ == "__main__":
    main()
