"""Training throughput of model configurations beside a preset, Facet's trainer only.

    python -m facet.bench.train_candidates --data <bench.extxyz> --preset facet-m \\
        --candidate pseudo=False --candidate channels=128,lmax=1,pseudo=False --rounds 1

Each configuration is the preset with ``KEY=VALUE`` overrides, read as YAML scalars like the
overrides of ``facet train`` (``False``, ``128``); the preset itself runs first. Every block is a
fresh single-threaded process (:func:`facet.bench.train_peers.facet_block`: the real training step,
compilation excluded, with the CPU share of the timed windows), interleaved over ``--rounds`` (the
order reverses every round). Use the extxyz that ``scripts/bench_train_peers.py`` wrote into its
``--work`` folder to compare with its MACE rows. Prints one line per block and writes the rows as
JSON (``--out``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..train.config import ConfigError, parse_override


def parse_overrides(spec: str) -> dict:
    """``"channels=128,pseudo=False"`` -> ``{"channels": 128, "pseudo": False}``: comma-separated
    items read by :func:`facet.train.config.parse_override` (YAML scalars, as ``facet train``)."""
    out = {}
    for item in filter(None, spec.split(",")):
        try:
            key, value = parse_override(item)
        except ConfigError:
            raise SystemExit(f"--candidate {spec!r}: expected KEY=VALUE, got {item!r}") from None
        out[key] = value
    return out


def main(argv=None) -> None:
    from .train_peers import facet_block

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="extxyz with energies, forces and stress")
    ap.add_argument("--preset", default="facet-m")
    ap.add_argument("--candidate", action="append", default=[], help="KEY=VALUE[,KEY=VALUE]")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--budget", nargs=3, type=int, default=[129, 4096, 9])
    ap.add_argument("--out", default="")
    args = ap.parse_args(argv)
    configs = {args.preset: {}} | {c: parse_overrides(c) for c in args.candidate}
    rows = []
    for rnd in range(args.rounds):
        names = list(configs) if rnd % 2 == 0 else list(configs)[::-1]
        for name in names:
            row = facet_block(args.data, args.preset, steps=args.steps, repeats=args.repeats,
                              warmup=args.warmup, overrides=configs[name], budget=args.budget)
            row.update(candidate=name, round=rnd)
            rows.append(row)
            print(f"{name:36s} params {row['params']:9d}  {row['structures_per_s']:.2f} "
                  f"structures/s, cpu share {row['cpu_share']:.2f}: "
                  f"{row.get('structures_per_cpu_s', float('nan')):.2f} per CPU-s, "
                  f"peak RSS {row['peak_rss_mb']:.0f} MB", flush=True)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
