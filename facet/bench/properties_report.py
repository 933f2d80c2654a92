"""``facet bench properties``: a Facet model against its teacher SevenNet-0, side by side.

Both sides run the same property code (:mod:`facet.bench.properties`, pure ASE) in their own
process: the Facet model under this Python, the teacher under the teacher environment's Python
(``--teacher-python``, default ``$FACET_TEACHER_PYTHON``; torch + sevenn, facet installed without
its dependencies), with this checkout first on its ``PYTHONPATH`` so both run this code. Without a
teacher Python the teacher side is skipped with a message (or reused from an earlier run's
``results.json`` with ``--teacher-results``: the teacher does not change).

The report compares, per the targets of issue 16 (:data:`TARGETS`):

* lattice constant a0 and bulk modulus B0 (Birch-Murnaghan) of every crystal: the error of the
  Facet value relative to the teacher's, and their medians over the crystals where the teacher
  has a fitted minimum. A Facet scan without a minimum (or any Facet failure) counts as an
  infinite error in the median (worse than any measured one), never as a skipped crystal;
* Gamma phonons of Si and NaCl: the optical frequencies (all but the three of smallest
  magnitude), sorted, compared mode by mode; the metric is the largest relative error;
* the relaxed water molecule: the H-O-H angle difference (degrees) and O-H length difference.

The comparison is :mod:`facet.bench.properties_compare`, the report
:mod:`facet.bench.properties_render`; this module runs the two sides. Writes ``results.json``,
``report.md`` and ``properties.png`` to ``docs/benchmarks/properties``
(``--quick``: three crystals, seven points, into ``docs/benchmarks/quick/properties``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import common
from .properties_compare import compare
from .properties_render import verdict, write_report

NAME = "properties"
TEACHER_PYTHON_ENV = "FACET_TEACHER_PYTHON"
QUICK_CRYSTALS = "Cu,Si,NaCl"

# ------------------------------------------------------------------------------- running


def _repo_root() -> Path:
    """The folder holding this checkout's ``facet`` package (put first on the sides' path)."""
    return Path(__file__).resolve().parents[2]


def run_side(
    python: str,
    side: str,
    out_json: Path,
    *,
    model: str,
    dtype: str,
    crystals: str | None,
    points: int,
    span: float,
) -> dict:
    """Run ``python -m facet.bench.properties`` for one side; its JSON or an error dict."""
    cmd = [
        python,
        "-m",
        "facet.bench.properties",
        "--side",
        side,
        "--out",
        str(out_json),
        "--points",
        str(points),
        "--span",
        str(span),
    ]
    if side == "facet":
        cmd += ["--model", model, "--dtype", dtype]
    if crystals:
        cmd += ["--crystals", crystals]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(_repo_root())] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    )
    env.setdefault("OMP_NUM_THREADS", "1")
    print(f"facet bench properties: {side} side: {' '.join(cmd)}", flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, stdout=sys.stdout, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0 or not out_json.exists():
        tail = (proc.stderr or "").strip().splitlines()[-5:]
        return {"error": f"{side} side failed (exit {proc.returncode}): " + " | ".join(tail)}
    res = common.read_json(out_json, f"the {side} side of facet bench properties")
    res["wall_s"] = time.perf_counter() - t0
    return res


def teacher_side(args, tmp: Path) -> tuple[dict | None, str]:
    """The teacher's results and where they came from (or None and the reason)."""
    if args.teacher_results:
        old = common.read_json(args.teacher_results, "an earlier facet bench properties run")
        t = (old.get("sides") or {}).get("teacher")
        if not t or "error" in t:
            raise common.BenchError(f"{args.teacher_results} holds no teacher results")
        ts = t.get("settings", {})
        if (ts.get("n_points"), ts.get("span")) != (args.points, args.span):
            raise common.BenchError(
                f"{args.teacher_results}: its teacher scans used {ts.get('n_points')} points "
                f"over +-{ts.get('span')}, this run {args.points} over +-{args.span}; "
                "give the same --points/--span or run the teacher"
            )
        return t, f"reused from {args.teacher_results} (run of {old['meta'].get('date_utc')})"
    python = args.teacher_python or os.environ.get(TEACHER_PYTHON_ENV)
    if not python:
        return None, (
            f"skipped: no teacher Python (give --teacher-python or set "
            f"${TEACHER_PYTHON_ENV} to the teacher venv's python)"
        )
    if not Path(python).exists():
        return None, f"skipped: teacher Python {python} not found"
    res = run_side(
        python,
        "teacher",
        tmp / "teacher.json",
        model="",
        dtype="float32",
        crystals=args.crystals,
        points=args.points,
        span=args.span,
    )
    if "error" in res:
        return None, "failed: " + res["error"]
    return res, "computed in this run"


def add_arguments(p: argparse.ArgumentParser) -> None:
    common_out = f"docs/benchmarks/{NAME}"
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"crystals {QUICK_CRYSTALS}, 7 points; writes docs/benchmarks/quick/",
    )
    p.add_argument("--out", type=Path, help=f"output folder (default {common_out})")
    p.add_argument(
        "--model",
        default="default",
        help="Facet model: 'default' or a training-run / checkpoint folder (default: default)",
    )
    p.add_argument(
        "--dtype",
        default="float64",
        choices=["float32", "float64"],
        help="Facet side's dtype (default float64: finite differences want it)",
    )
    p.add_argument(
        "--teacher-python",
        help=f"the teacher venv's python (default "
        f"${TEACHER_PYTHON_ENV}; without one the teacher side is skipped)",
    )
    p.add_argument(
        "--teacher-results",
        type=Path,
        help="reuse the teacher side of an earlier results.json (no teacher run)",
    )
    p.add_argument("--crystals", help="comma-separated subset of the crystals (default all 22)")
    p.add_argument(
        "--points",
        type=int,
        default=None,
        help="lattice constants per scan (default 11, 7 with --quick)",
    )
    p.add_argument(
        "--span", type=float, default=0.06, help="scan half-width, fraction of a (default 0.06)"
    )
    p.add_argument("--from-json", type=Path, help="only re-render the report from a results.json")


def run(args: argparse.Namespace) -> int:
    from . import meta as bench_meta

    out = common.output_dir(NAME, quick=args.quick, out=args.out)
    if args.from_json:
        res = common.read_json(args.from_json, "a facet bench properties results.json")
        print(f"wrote {write_report(res, out)}")
        return 0
    if args.quick and not args.crystals:
        args.crystals = QUICK_CRYSTALS
    if args.points is None:
        args.points = 7 if args.quick else 11
    if args.points < 5:
        raise common.BenchError("--points: at least 5 lattice constants are needed for a fit")
    command = "facet bench properties" + " ".join(
        [""]
        + (["--quick"] if args.quick else [])
        + [f"--model {args.model}"]
        + ([f"--crystals {args.crystals}"] if args.crystals and not args.quick else [])
    )
    res = {"meta": bench_meta.run_meta(dtype=args.dtype, quick=args.quick, command=command)}
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        teacher, teacher_from = teacher_side(args, tmp)
        print(f"facet bench properties: teacher {teacher_from}", flush=True)
        facet = run_side(
            sys.executable,
            "facet",
            tmp / "facet.json",
            model=args.model,
            dtype=args.dtype,
            crystals=args.crystals,
            points=args.points,
            span=args.span,
        )
    res["meta"]["loadavg_end"] = bench_meta.load_average()
    res["meta"]["teacher_from"] = teacher_from
    res["sides"] = {"teacher": teacher, "facet": facet}
    if "error" in facet:
        print(f"facet bench properties: {facet['error']}", file=sys.stderr)
        common.write_json(out / "results.json", res)
        return 1
    res.update(compare(teacher, facet))
    common.write_json(out / "results.json", res)
    print(f"wrote {write_report(res, out)}")
    for m in res["metrics"].values():
        print(
            f"  {m['what']}: {common.fmt(m['value'])} {m['unit']} "
            f"(target <= {m['target']}): {verdict(m['met'])}"
        )
    return 0
