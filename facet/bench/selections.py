"""Runners of the ``facet bench`` selections ``model``, ``scaling``, ``train``, ``accuracy``
and ``summary``: each takes the parsed arguments of ``facet/cli/bench.py`` and returns an exit
code (0: every row measured or skipped with a reason; 1: a row failed).
"""

from __future__ import annotations

import contextlib
import dataclasses
import time

from . import common, scaling_report, wrapped, wrapped_report
from .summary import write_page


def command_line(args, name: str, extra: str = "") -> str:
    """The command as a user would type it (recorded in every report)."""
    return f"facet bench {name}" + (" --quick" if args.quick else "") + extra


def model(args) -> int:
    """``facet bench model``: run facet.bench.model (or re-render) and write the report."""
    out = common.output_dir("model", quick=args.quick, out=args.out)
    if args.from_json:
        res = common.read_json(args.from_json, "a facet bench model results.json")
    else:
        extra = [a for a in args.script_args if a != "--"]
        res = wrapped.run_model(
            out,
            quick=args.quick,
            argv=extra or None,
            command=command_line(args, "model", " -- " + " ".join(extra) if extra else ""),
        )
    print(f"wrote {wrapped.write_model_report(res, out)}")
    return 0 if all(r.get("status") == "ok" for r in res["rows"]) else 1


def scaling(args) -> int:
    """``facet bench scaling``: measure (or re-render) and write the report."""
    import jax

    from . import scaling as sc

    out = common.output_dir("scaling", quick=args.quick, out=args.out)
    if args.from_json:
        res = common.read_json(args.from_json, "a facet bench scaling results.json")
    else:
        cfg = (
            sc.quick_config(jax.default_backend(), args.preset)
            if args.quick
            else sc.ScalingConfig(preset=args.preset)
        )
        changes = {
            "sizes": args.sizes,
            "channels": args.channels,
            "lmaxes": args.lmaxes,
            "sweep_atoms": args.sweep_atoms,
            "repeats": args.repeats,
            "matmul_n": args.matmul_n,
            "dtype": args.dtype,
            "deadline_s": args.budget_min and 60.0 * args.budget_min,
        }
        changes = {k: tuple(v) if isinstance(v, list) else v for k, v in changes.items() if v}
        cfg = dataclasses.replace(cfg, **changes)
        print(f"facet bench scaling: {cfg} -> {out}", flush=True)
        ctx = jax.enable_x64(True) if cfg.dtype == "float64" else contextlib.nullcontext()
        with ctx:  # scoped: no global flag is left behind
            res = sc.run(
                cfg,
                command=command_line(args, "scaling"),
                quick=args.quick,
                on_rows=lambda r: common.write_json(out / "results.json", r),
            )
    print(f"wrote {scaling_report.write_report(res, out)}")
    return 0 if all(r.get("status") == "ok" for r in res["rows"]) else 1


def recorded(name: str, args) -> int:
    """``facet bench train`` / ``accuracy``: run the module (full) or re-render the recorded run."""
    out = common.output_dir(name, quick=args.quick, out=args.out, root=args.root)
    extra = [a for a in args.script_args if a != "--"]
    flags = " --render-only" if args.render_only and not args.quick else ""
    command = command_line(args, name, flags + (" -- " + " ".join(extra) if extra else ""))
    runner = {"train": wrapped.run_train, "accuracy": wrapped.run_accuracy}[name]
    writer = {
        "train": wrapped_report.write_train_report,
        "accuracy": wrapped_report.write_accuracy_report,
    }[name]
    render = args.quick or args.render_only
    # --render-only re-renders the recorded run in the output folder's parent root
    root = out.parent if args.render_only and not args.quick else args.root
    res = runner(out, quick=render, argv=extra, command=command, bench_root=root)
    res["meta"]["quick"], res["meta"]["rerendered"] = args.quick, render
    print(f"wrote {writer(res, out)}")
    return (
        0
        if all(r["status"] == "ok" or r["status"].startswith("skipped") for r in res["rows"])
        else 1
    )


def summary_page(args) -> int:
    """``facet bench summary``: write README.md and summary.json of the (quick) root."""
    root = args.root / "quick" if args.quick else args.root
    date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    cmd = "facet bench summary" + (" --quick" if args.quick else "")
    print(f"wrote {write_page(root, command=cmd, date=date)}")
    return 0
