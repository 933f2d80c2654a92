"""``facet bench <selection>``: benchmarks, one selection per subject.

Selections live in :data:`SELECTIONS` (name -> :class:`Selection`, one literal table):

    facet bench tp        tensor-product microbenchmarks (tensorproducts.bench)
    facet bench model     Facet presets: throughput, compile time, cost split (facet.bench.model)
    facet bench scaling   cost/memory vs atoms (8-4096), channels, L; FLOP rate vs a large matmul
    facet bench md|relax  MD / relaxation speed vs the peers (facet.bench.dynamics)
    facet bench train     training throughput vs mace_run_train (facet.bench.train_peers)
    facet bench accuracy  accuracy at equal training time vs MACE (facet.bench.accuracy)
    facet bench properties  a0, B0, Gamma phonons, water vs SevenNet-0 (facet.bench.properties)
    facet bench summary   docs/benchmarks/README.md from every report's JSON
    facet bench all       every selection, one process each, then the summary

A full run writes ``docs/benchmarks/<selection>/`` (``results.json``, ``report.md``, PNGs);
``--quick`` writes ``docs/benchmarks/quick/<selection>/`` and refuses to write over a full report.
``train --quick`` and ``accuracy --quick`` re-render the recorded full runs instead of training.
The runners live in :mod:`facet.bench`; this module only parses arguments.
"""

from __future__ import annotations

import argparse
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




# ---------------------------------------------------------------------------- tp


def _tp_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true", help="small run (L <= 3, small batches)")
    p.add_argument(
        "--out",
        type=Path,
        help=f"output folder (default {FULL_TP_DIR}, or {QUICK_TP_DIR} with --quick, or the "
        "folder of --merge-into)",
    )
    p.add_argument("--pof", help="path of a PriceofFreedom checkout to run beside ours")
    p.add_argument("--pof-budget-s", type=float, default=None, help="time budget of that run")
    p.add_argument(
        "--pof-max-compile-s",
        type=float,
        default=None,
        help="skip a research case (and its larger L) whose compile takes longer (default 120)",
    )
    p.add_argument(
        "--pof-variants",
        help="comma-separated research variants (e.g. GTP-grid,Matrix-TP; default: those "
        "beside --variants, else all)",
    )
    p.add_argument("--variants", help="comma-separated subset of our variants")
    p.add_argument(
        "--settings",
        help="comma-separated subset of mimo,edge,siso,simo (default all); the research code "
        "runs the chosen ones of siso,simo,mimo (mimo adds its VSH-input vector Gaunt)",
    )
    p.add_argument(
        "--merge-into",
        type=Path,
        help="merge this run into FILE (an earlier results.json; rows keep their run ids, "
        "checks pair rows of one run only) and write the result and report to --out "
        "(default: FILE's folder)",
    )
    p.add_argument("--no-expressivity", action="store_true", help="skip the expressivity table")
    p.add_argument("--from-json", type=Path, help="only rewrite the report from a results.json")
    p.add_argument(
        "--budget-min",
        type=float,
        default=None,
        help="stop starting new cases after this many minutes (rest recorded as skipped)",
    )


def _tp_run(args: argparse.Namespace) -> int:
    from tensorproducts.bench import main as tp_main

    return tp_main.main(args, full_dir=FULL_TP_DIR, quick_dir=QUICK_TP_DIR)


_TP = Selection("tp", "tensor-product microbenchmarks (tensorproducts.bench)", _tp_arguments,
                _tp_run)


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
        help="after --: arguments of python -m facet.bench.model (default: quick/full set)",
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


_MODEL = Selection(
    "model",
    "Facet presets: throughput, compile time, cost split (facet.bench.model)",
    _model_arguments,
    lambda a: _sel().model(a),
)
_SCALING = Selection(
    "scaling",
    "cost and memory vs atoms (8-4096), channels and L; FLOP rate vs a large matmul",
    _scaling_arguments,
    lambda a: _sel().scaling(a),
)


# ------------------------------------------------------------------------ md, relax


def _dynamics_selection(name: str, what: str) -> Selection:
    """``facet bench md`` / ``relax``: the ``--only`` selections of :mod:`facet.bench.dynamics`."""

    def add(p: argparse.ArgumentParser) -> None:
        from facet.bench import dynamics

        dynamics.add_arguments(p)
        p.set_defaults(only=name)

    def run_selection(args: argparse.Namespace) -> int:
        from facet.bench import dynamics

        args.only = name
        return int(dynamics.run(args) or 0)

    return Selection(name, what, add, run_selection)


_MD = _dynamics_selection(
    "md", "MD steps/s of Facet vs MACE (ASE and jax-md), facet.bench.dynamics")
_RELAX = _dynamics_selection(
    "relax", "relaxation speed vs MACE, SevenNet-0, CHGNet, Nequix; batched vs ASE"
)


# ------------------------------------------------------------------- train, accuracy


def _recorded_arguments(name: str, module: str, recorded: str):
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
            help=f"after --: arguments of python -m {module} (full runs)",
        )

    return add


_TRAIN = Selection(
    "train",
    "training throughput, Facet vs mace_run_train (facet.bench.train_peers)",
    _recorded_arguments("train", "facet.bench.train_peers", "train_peers.json"),
    lambda a: _sel().recorded("train", a),
)
_ACCURACY = Selection(
    "accuracy",
    "accuracy at equal training time, Facet vs MACE (facet.bench.accuracy)",
    _recorded_arguments("accuracy", "facet.bench.accuracy", "accuracy.json"),
    lambda a: _sel().recorded("accuracy", a),
)


# ------------------------------------------------------------------------ properties


def _properties_arguments(p: argparse.ArgumentParser) -> None:
    from facet.bench import properties_report

    properties_report.add_arguments(p)


def _properties_run(args: argparse.Namespace) -> int:
    from facet.bench import properties_report

    return properties_report.run(args)


_PROPERTIES = Selection(
    "properties",
    "lattice constants, bulk moduli, Gamma phonons, water vs SevenNet-0 (issue 16)",
    _properties_arguments,
    _properties_run,
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


_SUMMARY = Selection(
    "summary",
    "write docs/benchmarks/README.md from every report's JSON",
    _summary_arguments,
    lambda a: _sel().summary_page(a),
)
_ALL = Selection(
    "all",
    "every selection in turn (each in its own process), then the summary",
    _all_arguments,
    _all_run,
)


# ---------------------------------------------------------------------------- the table

#: Every ``facet bench`` selection, in the order ``facet bench --help`` lists them.
SELECTIONS: dict[str, Selection] = {
    sel.name: sel for sel in (
        _TP,
        _MODEL,
        _SCALING,
        _MD,
        _RELAX,
        _TRAIN,
        _ACCURACY,
        _PROPERTIES,
        _SUMMARY,
        _ALL,
    )
}


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
