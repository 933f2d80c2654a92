"""``facet bench <selection>``: benchmarks, one registered selection per subject.

Selections live in :data:`SELECTIONS` (name -> :class:`Selection`, :func:`register_selection`):

    facet bench tp        tensor-product microbenchmarks (tensorproducts.bench)
    facet bench model     Facet presets: throughput, compile time, cost split (bench_model.py)
    facet bench scaling   cost/memory vs atoms (8-4096), channels, L; FLOP rate vs a large matmul
    facet bench md|relax  MD / relaxation speed vs the peers (scripts/bench_dynamics.py, in md.py)
    facet bench train     training throughput vs mace_run_train (scripts/bench_train_peers.py)
    facet bench accuracy  accuracy at equal training time vs MACE (scripts/bench_accuracy.py)
    facet bench summary   docs/benchmarks/README.md from every report's JSON
    facet bench all       every selection, one process each, then the summary

A full run writes ``docs/benchmarks/<selection>/`` (``results.json``, ``report.md``, PNGs);
``--quick`` writes ``docs/benchmarks/quick/<selection>/`` and refuses to write over a full report.
``train --quick`` and ``accuracy --quick`` re-render the recorded full runs instead of training.
The runners live in :mod:`facet.bench`; this module only parses arguments.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

NAME = "bench"
HELP = "run benchmarks (tensor products, ...) and write reports under docs/benchmarks/"

FULL_TP_DIR = Path("docs/benchmarks/tp")
QUICK_TP_DIR = Path("docs/benchmarks/quick/tp")


@dataclass(frozen=True)
class Selection:
    """One ``facet bench`` subject: its help, its argparse setup and its runner."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


SELECTIONS: dict[str, Selection] = {}


def register_selection(sel: Selection) -> Selection:
    if sel.name in SELECTIONS:
        raise ValueError(f"benchmark selection {sel.name!r} is already registered")
    SELECTIONS[sel.name] = sel
    return sel


# ---------------------------------------------------------------------------- tp


def _tp_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true", help="small run (L <= 3, small batches)")
    p.add_argument(
        "--out",
        type=Path,
        help=f"output folder (default {FULL_TP_DIR}, or {QUICK_TP_DIR} with --quick)",
    )
    p.add_argument("--pof", help="path of a PriceofFreedom checkout to run beside ours")
    p.add_argument("--pof-budget-s", type=float, default=None, help="time budget of that run")
    p.add_argument("--variants", help="comma-separated subset of variants")
    p.add_argument("--no-expressivity", action="store_true", help="skip the expressivity table")
    p.add_argument("--from-json", type=Path, help="only rewrite the report from a results.json")
    p.add_argument(
        "--budget-min",
        type=float,
        default=None,
        help="stop starting new cases after this many minutes (rest recorded as skipped)",
    )


def _load_pof_script():
    """``scripts/pof_bench.py`` of this source checkout (it is not part of the package)."""
    import tensorproducts

    path = Path(tensorproducts.__file__).resolve().parent.parent / "scripts" / "pof_bench.py"
    if not path.exists():
        return None
    spec = importlib.util.spec_from_file_location("facet_pof_bench", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def tp_config(quick: bool, variants=None):
    """The :class:`tensorproducts.bench.BenchConfig` of a full or ``--quick`` run."""
    from tensorproducts.bench import BenchConfig

    if not quick:
        return BenchConfig(variants=variants)
    return BenchConfig(  # small enough for `facet bench all --quick` on a shared 2-core box
        lmaxes={"siso": (1, 2), "simo": (1, 2), "mimo": (1, 2, 3)},
        bwd_lmaxes=(2,),
        batch={1: 256, 2: 256, 3: 256},
        channel_counts=(16,),
        channel_lmaxes=(2,),
        bwd_channel_counts=(16,),
        edges=128,
        warmup=2,
        repeats=3,
        variants=variants,
    )


def _save(result: dict, out: Path) -> None:
    """Keep the raw rows on disk at each stage (a later failure loses nothing measured)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(result, indent=1, default=str))


def _tp_run(args: argparse.Namespace) -> int:
    import jax

    from tensorproducts import bench, bench_report, expressivity

    out = args.out or (QUICK_TP_DIR if args.quick else FULL_TP_DIR)
    if args.quick and out.resolve() == FULL_TP_DIR.resolve():
        print(f"error: --quick never writes over the full report in {FULL_TP_DIR}", file=sys.stderr)
        return 2
    command = (
        "facet bench tp" + (" --quick" if args.quick else "") + (" --pof PATH" if args.pof else "")
    )
    if args.from_json:
        result = json.loads(Path(args.from_json).read_text())
        print(f"wrote {bench_report.write_report(result, out, command=result.get('command', ''))}")
        return 0
    variants = tuple(args.variants.split(",")) if args.variants else None
    cfg = tp_config(args.quick, variants)
    if args.budget_min:
        cfg = dataclasses.replace(cfg, deadline_s=60.0 * args.budget_min)
    print(f"facet bench tp: {'quick' if args.quick else 'full'} run -> {out}")
    partial = {"command": command, "config": {}, "meta": {}}
    result = bench.run(cfg, on_rows=lambda rows: _save(dict(partial, rows=rows), out))
    result["command"] = command
    _save(result, out)
    pof_rows, pof_meta = [], {"pof": "not requested (--pof PATH)"}
    if args.pof:
        mod = _load_pof_script()
        if mod is None:
            pof_meta = {"pof": "skipped: scripts/pof_bench.py not found (run from a checkout)"}
        else:
            pcfg = {
                "settings": ["siso", "simo", "mimo"],
                "lmaxes": {s: list(cfg.lmaxes[s]) for s in ("siso", "simo", "mimo")},
                "batch": {str(k): v for k, v in cfg.batch.items()},
                "warmup": cfg.warmup,
                "repeats": cfg.repeats,
                "max_call_s": cfg.max_call_s,
                "dtype": cfg.dtype,
            }
            budget = args.pof_budget_s or (120.0 if args.quick else 360.0)
            pof_rows, pof_meta = mod.run_pof(args.pof, pcfg, budget_s=budget)
    result["pof"] = {"meta": pof_meta, "rows": pof_rows}
    _save(result, out)
    if not args.no_expressivity:
        names = [n for n in (variants or sorted(bench.REGISTRY)) if n in bench.REGISTRY]
        lmaxes, inter = ((1, 2), 1) if args.quick else ((1, 2, 3), 2)
        with jax.enable_x64(True):  # exact ranks; scoped, restored afterwards
            result["expressivity"] = expressivity.expressivity_rows(
                names, lmaxes, interact_lmax=inter
            )
    path = bench_report.write_report(result, out, command=command)
    print(f"wrote {path}")
    return 0


register_selection(
    Selection("tp", "tensor-product microbenchmarks (tensorproducts.bench)", _tp_arguments, _tp_run)
)


# ------------------------------------------------------------------- model, scaling


def _sel():
    from facet.bench import selections

    return selections


def _common_arguments(p: argparse.ArgumentParser, name: str) -> None:
    p.add_argument("--quick", action="store_true", help="small run; writes docs/benchmarks/quick/")
    p.add_argument(
        "--out",
        type=Path,
        help=f"output folder (default docs/benchmarks/{name}, "
        f"or docs/benchmarks/quick/{name} with --quick)",
    )


def _model_arguments(p: argparse.ArgumentParser) -> None:
    _common_arguments(p, "model")
    p.add_argument("--from-json", type=Path, help="only re-render the report from a results.json")
    p.add_argument(
        "script_args",
        nargs=argparse.REMAINDER,
        help="after --: arguments of scripts/bench_model.py (default: quick/full set)",
    )


def _scaling_arguments(p: argparse.ArgumentParser) -> None:
    _common_arguments(p, "scaling")
    p.add_argument("--preset", default="facet-s")
    p.add_argument("--sizes", type=int, nargs="+", help="atoms (multiples of 4), e.g. 8 256 4096")
    p.add_argument("--channels", type=int, nargs="+", help="channel counts of the channel sweep")
    p.add_argument("--lmaxes", type=int, nargs="+", help="L values of the L sweep")
    p.add_argument("--sweep-atoms", type=int, help="system size of the channel and L sweeps")
    p.add_argument("--repeats", type=int)
    p.add_argument("--matmul-n", type=int, help="size of the reference matrix product")
    p.add_argument("--dtype", choices=["float32", "float64"])
    p.add_argument("--budget-min", type=float, help="start no new configuration after this")
    p.add_argument("--from-json", type=Path, help="only re-render the report from a results.json")


register_selection(
    Selection(
        "model",
        "Facet presets: throughput, compile time, cost split (scripts/bench_model.py)",
        _model_arguments,
        lambda a: _sel().model(a),
    )
)
register_selection(
    Selection(
        "scaling",
        "cost and memory vs atoms (8-4096), channels and L; FLOP rate vs a large matmul",
        _scaling_arguments,
        lambda a: _sel().scaling(a),
    )
)


# ------------------------------------------------------------------- train, accuracy


def _recorded_arguments(name: str, script: str, recorded: str):
    def add(p: argparse.ArgumentParser) -> None:
        _common_arguments(p, name)
        p.add_argument(
            "--render-only",
            action="store_true",
            help=f"re-render the report from the folder's recorded {recorded} "
            "(no training; --quick always does this from the full report's JSON)",
        )
        p.add_argument(
            "--root",
            type=Path,
            default=Path("docs/benchmarks"),
            help="folder holding the full reports (default docs/benchmarks)",
        )
        p.add_argument(
            "script_args",
            nargs=argparse.REMAINDER,
            help=f"after --: arguments of scripts/{script} (full runs)",
        )

    return add


register_selection(
    Selection(
        "train",
        "training throughput, Facet vs mace_run_train (scripts/bench_train_peers.py)",
        _recorded_arguments("train", "bench_train_peers.py", "train_peers.json"),
        lambda a: _sel().recorded("train", a),
    )
)
register_selection(
    Selection(
        "accuracy",
        "accuracy at equal training time, Facet vs MACE (scripts/bench_accuracy.py)",
        _recorded_arguments("accuracy", "bench_accuracy.py", "accuracy.json"),
        lambda a: _sel().recorded("accuracy", a),
    )
)


# ------------------------------------------------------------------------ summary, all


def _summary_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true", help="summarise docs/benchmarks/quick/")
    p.add_argument("--root", type=Path, default=Path("docs/benchmarks"))


def _all_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true", help="quick runs into docs/benchmarks/quick/")
    p.add_argument(
        "--venvs-dir",
        help="DIR/<peer>/bin/python for the peers (default "
        "$FACET_VENVS_DIR, else ~/venvs when it exists)",
    )
    p.add_argument("--nequix-model", help="nequix-mp-1.nqx (default $FACET_NEQUIX_MODEL)")
    p.add_argument("--pof", help="PriceofFreedom checkout for the tp selection")
    p.add_argument("--skip", default="", help="comma-separated selections to leave out")
    p.add_argument("--root", type=Path, default=Path("docs/benchmarks"))


def _all_run(args: argparse.Namespace) -> int:
    from facet.bench import run_all

    return run_all.run(args)


register_selection(
    Selection(
        "summary",
        "write docs/benchmarks/README.md from every report's JSON",
        _summary_arguments,
        lambda a: _sel().summary_page(a),
    )
)
register_selection(
    Selection(
        "all",
        "every selection in turn (each in its own process), then the summary",
        _all_arguments,
        _all_run,
    )
)


# ---------------------------------------------------------------------------- dispatch


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="selection", metavar="SELECTION")
    for sel in SELECTIONS.values():
        p = sub.add_parser(sel.name, help=sel.help, description=sel.help)
        sel.add_arguments(p)


def run(args: argparse.Namespace) -> int:
    sel = SELECTIONS.get(getattr(args, "selection", None))
    if sel is None:
        print(f"choose a benchmark selection: {', '.join(SELECTIONS)}", file=sys.stderr)
        return 2
    return sel.run(args)
