"""``facet bench tp``: one run of :mod:`tensorproducts.bench.harness` from its options.

:func:`main` runs our cases (``--settings``, ``--variants``, ``--budget-min``), the research
implementation beside them (``--pof``, ``--pof-variants``, ``--pof-budget-s``; through
:mod:`tensorproducts.bench.pof`), the expressivity table, and writes
``results.json`` and the report. Every run-shaping option is recorded in ``meta.options`` and the
command line in ``command`` (no paths of the machine). ``--merge-into FILE`` merges the run into
an earlier result (:func:`tensorproducts.bench.runs.merge`: rows keep their run ids; checks pair
rows of one run only); the merged result is saved after every case, so an interrupted run loses
nothing measured. The argument parser is in :mod:`facet.cli.bench`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import jax

from .. import expressivity
from ..registry import REGISTRY
from . import harness, pof, report
from .cases import SETTINGS, BenchConfig, candidates
from .runs import MergeError, check_compatible, merge, research_settings, stamp

__all__ = ["main", "tp_command", "tp_config"]


def tp_config(quick: bool, variants=None, settings=None):
    """The :class:`tensorproducts.bench.cases.BenchConfig` of a full or ``--quick`` run, restricted
    to ``settings`` (names in the default run order) when given."""
    cfg = BenchConfig(variants=variants)
    if quick:
        cfg = BenchConfig(  # small enough for `facet bench all --quick` on a shared 2-core box
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
    if settings:
        cfg = dataclasses.replace(cfg, settings=tuple(s for s in cfg.settings if s in settings))
    return cfg


def _names(text, allowed, what: str) -> tuple[str, ...] | None:
    """``text`` split on commas, each checked against ``allowed`` (ValueError naming the bad)."""
    if not text:
        return None
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    bad = [n for n in names if n not in allowed]
    if bad or not names:
        raise ValueError(f"unknown {what} {bad or text!r}; choose from {', '.join(allowed)}")
    return names


def tp_command(args: argparse.Namespace) -> str:
    """The command line of a run as recorded in its result (paths of this machine omitted)."""
    parts = ["facet bench tp"] + (["--quick"] if args.quick else [])
    for flag, attr in (("--settings", "settings"), ("--variants", "variants"),
                       ("--budget-min", "budget_min")):  # fmt: skip
        if getattr(args, attr, None) is not None:
            parts.append(f"{flag} {getattr(args, attr):g}" if attr == "budget_min"
                         else f"{flag} {getattr(args, attr)}")  # fmt: skip
    if args.pof:
        parts.append("--pof PATH")
        if getattr(args, "pof_variants", None):
            parts.append(f"--pof-variants {args.pof_variants}")
        if args.pof_budget_s is not None:
            parts.append(f"--pof-budget-s {args.pof_budget_s:g}")
        if getattr(args, "pof_max_compile_s", None) is not None:
            parts.append(f"--pof-max-compile-s {args.pof_max_compile_s:g}")
    if args.no_expressivity:
        parts.append("--no-expressivity")
    merge = getattr(args, "merge_into", None)
    if merge:
        parts.append(f"--merge-into {merge if not Path(merge).is_absolute() else 'FILE'}")
    return " ".join(parts)


def _save(result: dict, out: Path) -> None:
    """Keep the raw rows on disk at each stage (a later failure loses nothing measured)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(result, indent=1, default=str))


def _research_plan(args, cfg, variants, mod) -> tuple[dict | None, str]:
    """``(config of the research run, "")`` or ``(None, reason it is not run)``."""
    settings = research_settings(cfg.settings)
    if not settings:
        return None, "skipped: no research setting among --settings (edge has none)"
    chosen = (
        mod.check_variants(args.pof_variants.split(","))
        if getattr(args, "pof_variants", None)
        else [v for v, o in mod.POF_VARIANTS.items() if variants is None or o in variants]
    )
    if not chosen:
        return None, "skipped: no research variant beside --variants"
    lmaxes = {s: list(cfg.lmaxes.get("mimo" if s == "vsh" else s, ())) for s in settings}
    return {
        "settings": settings,
        "variants": chosen,
        "lmaxes": lmaxes,
        "batch": {str(k): v for k, v in cfg.batch.items()},
        "warmup": cfg.warmup,
        "repeats": cfg.repeats,
        "max_call_s": cfg.max_call_s,
        "dtype": cfg.dtype,
        "paired_rounds": mod.paired_rounds(args.quick),  # ours beside each research case
        **(
            {"max_compile_s": args.pof_max_compile_s}
            if getattr(args, "pof_max_compile_s", None) is not None
            else {}
        ),
    }, ""


def _read_base(path: Path) -> dict:
    try:
        base = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not a JSON results file ({err})") from err
    if not isinstance(base, dict) or not isinstance(base.get("rows"), list):
        raise ValueError(f"{path}: not a `facet bench tp` results file (no 'rows' list)")
    return base


def main(args: argparse.Namespace, full_dir: Path, quick_dir: Path) -> int:
    """Run ``facet bench tp`` with the parsed ``args``; 0 on success, 2 on bad options."""
    merge_into = getattr(args, "merge_into", None)
    merge_into = Path(merge_into) if merge_into else None
    out = args.out or (merge_into.parent if merge_into else quick_dir if args.quick else full_dir)
    if args.quick and Path(out).resolve() == Path(full_dir).resolve():
        print(f"error: --quick never writes over the full report in {full_dir}", file=sys.stderr)
        return 2
    command = tp_command(args)
    if args.from_json:
        result = json.loads(Path(args.from_json).read_text())
        print(f"wrote {report.write_report(result, out, command=result.get('command', ''))}")
        return 0
    try:
        variants = _names(args.variants, list(candidates()), "variant(s)")
        settings = _names(getattr(args, "settings", None), list(SETTINGS), "setting(s)")
        cfg = tp_config(args.quick, variants, settings)
        if args.pof and getattr(args, "pof_variants", None):
            pof.check_variants(args.pof_variants.split(","))  # before, not after, our cases
        base = _read_base(merge_into) if merge_into else None
        if base is not None:
            check_compatible(base.get("config", {}), harness.config_dict(cfg), str(merge_into))
    except (ValueError, OSError) as err:  # MergeError and JSONDecodeError are ValueErrors
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.budget_min:
        cfg = dataclasses.replace(cfg, deadline_s=60.0 * args.budget_min)
    budget = args.pof_budget_s or (120.0 if args.quick else 360.0)
    options = {
        "quick": args.quick, "settings": list(cfg.settings),
        "variants": variants and list(variants), "budget_min": args.budget_min,
        "pof": bool(args.pof),
        "pof_variants": getattr(args, "pof_variants", None),
        "pof_budget_s": budget if args.pof else None, "no_expressivity": args.no_expressivity,
        "merge_into": merge_into and command.split("--merge-into ")[-1],
    }  # fmt: skip

    def merged(res: dict) -> dict:
        return merge(base, res, str(merge_into)) if base is not None else res

    print(f"facet bench tp: {'quick' if args.quick else 'full'} run -> {out}")
    partial = {"command": command, "config": harness.config_dict(cfg), "meta": {"options": options}}
    result = harness.run(cfg, on_rows=lambda rows: _save(merged(dict(partial, rows=rows)), out))
    result["command"] = command
    result["meta"]["options"] = options
    _save(merged(result), out)
    pof_rows, pof_meta = [], {"pof": "not requested (--pof PATH)"}
    if args.pof:
        try:
            pcfg, why = _research_plan(args, cfg, variants, pof)
        except ValueError as err:
            pcfg, why = None, f"skipped: {err}"
        if pcfg is None:
            pof_meta = {"pof": why}
        else:
            pof_rows, pof_meta = pof.run_pof(args.pof, pcfg, budget_s=budget)
        pof_meta["budget_s"] = budget
    result["pof"] = {"meta": pof_meta, "rows": stamp(pof_rows, result["meta"]["run_id"])}
    _save(merged(result), out)
    if not args.no_expressivity:
        names = [n for n in (variants or sorted(REGISTRY)) if n in REGISTRY]
        lmaxes, inter = ((1, 2), 1) if args.quick else ((1, 2, 3), 2)
        with jax.enable_x64(True):  # exact ranks; scoped, restored afterwards
            result["expressivity"] = expressivity.expressivity_rows(
                names, lmaxes, interact_lmax=inter
            )
    try:
        final = merged(result)
    except MergeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    path = report.write_report(final, out, command=command)
    print(f"wrote {path}")
    return 0
