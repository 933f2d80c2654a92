"""Interleaved A/B timing of our tensor products against the PriceofFreedom research code.

`facet bench tp --pof` times the research code in its own subprocess, after our rows. When both
sides run the same arithmetic (equal XLA FLOPs), the drift between the two halves of a run can be
larger than the gap being measured. Its research worker therefore also times our variant beside
each research case, ABBA-interleaved (the rows' ``paired`` field, a few rounds per case); this
module does the same, with more rounds, for a hand-picked case list
(:mod:`tensorproducts.bench.pof_pairing` has the call order and the timing). Setting
names, batch sizes and research-code keywords are the benchmark's
(:mod:`tensorproducts.bench.cases`, :mod:`tensorproducts.bench.pof`).

Run it with the research environment's Python (it needs both packages), pinned to one core::

    PYTHONPATH=<checkout> OMP_NUM_THREADS=1 taskset -c 1 \\
        ~/.cache/facet/pof-venv/bin/python -m tensorproducts.bench.pof_interleaved \\
        --out docs/benchmarks/tp/interleaved

Writes ``interleaved.json`` and ``interleaved.md`` in ``--out``. Not a test: timings are
measurements, reported as medians with the interquartile range.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

# (setting, L, our variant): the cases where the non-interleaved run had ours slower
DEFAULT_CASES = [
    ("siso", 2, "cg-dense"),
    ("siso", 3, "cg-dense"),
    ("simo", 1, "cg-dense"),
    ("simo", 6, "cg-dense"),
    ("siso", 8, "cg-sparse"),
    ("siso", 9, "cg-sparse"),
    ("siso", 10, "cg-sparse"),
    ("mimo", 1, "matrix"),
    ("mimo", 3, "matrix"),
    ("mimo", 4, "matrix"),
    ("mimo", 6, "matrix"),
    ("mimo", 7, "matrix"),
]


def _case_inputs(setting: str, lmax: int):
    """Inputs of the benchmark's case: its irreps and its batch size (BenchConfig)."""
    import e3nn_jax as e3nn
    import jax

    from .cases import BenchConfig, batch_size
    from .pof import setting_irreps

    ir1, ir2, out = setting_irreps(setting, lmax)
    batch = batch_size(BenchConfig().batch, setting, lmax)
    k = jax.random.split(jax.random.PRNGKey(lmax), 2)
    return e3nn.normal(ir1, k[0], (batch,)), e3nn.normal(ir2, k[1], (batch,)), out, batch


def _functions(variant: str, lmax: int, out):
    """Ours and the research code's product of the same variant (tensorproducts.bench.pof's
    mapping and keyword choices)."""
    from freedom.tensor_products import functional as F

    import tensorproducts

    from .pof import POF_VARIANTS, research_fn

    ours = tensorproducts.get(variant).apply
    research = research_fn(F, {v: k for k, v in POF_VARIANTS.items()}[variant], lmax, out)
    return lambda x, y: ours(x, y, out).array, lambda x, y: research(x, y).array


def time_pair(fa, fb, x, y, rounds: int, warmup: int = 3) -> tuple[dict, dict]:
    """``fa`` and ``fb`` jitted and timed on ``(x, y)``, ABBA-interleaved (pof_pairing)."""
    import jax

    from .pof_pairing import interleave, ready

    a, b, _ = interleave(ready(jax.jit(fa), x, y), ready(jax.jit(fb), x, y), rounds, warmup=warmup)
    return a, b


def _shown(path: Path) -> str:
    """``path`` relative to the working folder (the repository's root, where reports are
    written and committed: no paths of this machine) when inside it, else as given."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--rounds", type=int, default=40)
    args = ap.parse_args(argv)
    import jax

    rows = []
    for setting, lmax, variant in DEFAULT_CASES:
        x, y, out, batch = _case_inputs(setting, lmax)
        ours, research = _functions(variant, lmax, out)
        a, b = time_pair(ours, research, x, y, args.rounds)
        ratio = b["median_ms"] / a["median_ms"]
        row = {"setting": setting, "L": lmax, "variant": variant, "batch": batch}
        rows.append(dict(row, ours=a, research=b, research_over_ours=ratio))
        print(f"{setting} L={lmax:2d} {variant:9s} ours {a['median_ms']:.3f} ms  research "
              f"{b['median_ms']:.3f} ms  research/ours {ratio:.2f}", flush=True)  # fmt: skip
    meta = {
        "date_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "cpu": platform.processor() or platform.machine(),
        "affinity": sorted(os.sched_getaffinity(0)),
        "threads": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "XLA_FLAGS")},
        "rounds": args.rounds,
        "command": "python -m tensorproducts.bench.pof_interleaved --out " + _shown(args.out),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "interleaved.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    lines = [
        "# Interleaved A/B: ours vs the research code, one process",
        "",
        f"Measured {meta['date_utc']} by `{meta['command']}`, "
        f"JAX {meta['jax']}, Python {meta['python']}, cores {meta['affinity']}, "
        f"{args.rounds} ABBA rounds after 3 warm-up calls each; forward, float32. The cases are "
        "those where an earlier, non-interleaved report had ours slower; report.md now pairs every "
        "research case this way (the `paired` field of its research rows).",
        "",
        "| setting | L | variant | batch | ours ms (IQR) | research ms (IQR) | research/ours |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        a, b = r["ours"], r["research"]
        lines.append(
            f"| {r['setting']} | {r['L']} | {r['variant']} | {r['batch']} | "
            f"{a['median_ms']:.3f} ({a['iqr_ms']:.3f}) | {b['median_ms']:.3f} ({b['iqr_ms']:.3f}) "
            f"| {r['research_over_ours']:.2f} |"
        )
    (args.out / "interleaved.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
