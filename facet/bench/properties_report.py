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

Writes ``results.json``, ``report.md`` and ``properties.png`` to ``docs/benchmarks/properties``
(``--quick``: three crystals, seven points, into ``docs/benchmarks/quick/properties``).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import common

NAME = "properties"
TEACHER_PYTHON_ENV = "FACET_TEACHER_PYTHON"
QUICK_CRYSTALS = "Cu,Si,NaCl"

#: metric -> (target, unit, description): a metric is met when its value <= target.
TARGETS = {
    "median_lattice_error_pct": (1.0, "%", "median lattice-constant error"),
    "median_bulk_modulus_error_pct": (10.0, "%", "median bulk-modulus error"),
    "water_angle_diff_deg": (5.0, "deg", "water H-O-H angle difference"),
    "phonon_max_rel_error_pct": (5.0, "%", "Si and NaCl Gamma phonons, max relative error"),
}

N_ACOUSTIC = 3


# ---------------------------------------------------------------------------- comparison


def _rel_pct(ours: float, ref: float) -> float:
    return 100.0 * abs(ours - ref) / abs(ref)


def _median_with_failures(values: list[float]) -> float | None:
    """Median where failures are ``inf`` (sorted last); None when empty."""
    return statistics.median(values) if values else None


def optical(freqs: list[float]) -> list[float]:
    """The frequencies without the :data:`N_ACOUSTIC` of smallest magnitude, sorted."""
    order = sorted(range(len(freqs)), key=lambda i: abs(freqs[i]))
    return sorted(freqs[i] for i in order[N_ACOUSTIC:])


def compare(teacher: dict | None, facet: dict) -> dict:
    """Rows per property and the summary metrics of the Facet side against the teacher."""
    t_eos = {r["name"]: r for r in (teacher or {}).get("eos", [])}
    eos_rows, a_err, b_err, excluded = [], [], [], []
    for f in facet["eos"]:
        t = t_eos.get(f["name"])
        row = {
            "kind": "eos",
            "name": f["name"],
            "structure": f.get("structure"),
            "teacher_status": t["status"] if t else "not run",
            "facet_status": f["status"],
            "teacher_reason": (t or {}).get("reason") or (t or {}).get("fit_warning"),
            "facet_reason": f.get("reason") or f.get("fit_warning"),
        }
        for side, r in (("teacher", t), ("facet", f)):
            ok = bool(r) and r["status"] == "ok"
            row[f"{side}_a0"] = r["a0"] if ok else None
            row[f"{side}_b0_GPa"] = r["b0_GPa"] if ok else None
            row[f"{side}_bp"] = r["bp"] if ok else None
        if not t or t["status"] != "ok":
            excluded.append(f["name"])
            row["a_err_pct"] = row["b_err_pct"] = None
        elif f["status"] != "ok":
            row["a_err_pct"] = row["b_err_pct"] = math.inf
        else:
            row["a_err_pct"] = _rel_pct(f["a0"], t["a0"])
            row["b_err_pct"] = _rel_pct(f["b0_GPa"], t["b0_GPa"])
        if row["a_err_pct"] is not None:
            a_err.append(row["a_err_pct"])
            b_err.append(row["b_err_pct"])
        eos_rows.append(row)

    t_ph = {r["name"]: r for r in (teacher or {}).get("phonons", [])}
    ph_rows, ph_err = [], []
    for f in facet["phonons"]:
        t = t_ph.get(f["name"])
        row = {
            "kind": "phonons",
            "name": f["name"],
            "facet_status": f["status"],
            "teacher_status": t["status"] if t else "not run",
        }
        row["facet_THz"] = optical(f["frequencies_THz"]) if f["status"] == "ok" else None
        row["teacher_THz"] = optical(t["frequencies_THz"]) if t and t["status"] == "ok" else None
        row["facet_a"], row["teacher_a"] = f.get("a"), (t or {}).get("a")
        if row["teacher_THz"] is None:
            row["max_rel_err_pct"] = None
        elif row["facet_THz"] is None:
            row["max_rel_err_pct"] = math.inf
        else:
            row["max_rel_err_pct"] = max(
                _rel_pct(a, b) for a, b in zip(row["facet_THz"], row["teacher_THz"], strict=True)
            )
        if row["max_rel_err_pct"] is not None:
            ph_err.append(row["max_rel_err_pct"])
        ph_rows.append(row)

    fw, tw = facet.get("water"), (teacher or {}).get("water")
    water = {
        "kind": "water",
        "name": "H2O",
        "facet_status": fw["status"] if fw else "not run",
        "teacher_status": tw["status"] if tw else "not run",
    }
    for side, r in (("facet", fw), ("teacher", tw)):
        ok = bool(r) and r["status"] == "ok"
        water[f"{side}_angle_deg"] = r["angle_deg"] if ok else None
        water[f"{side}_oh_A"] = r["oh_mean_A"] if ok else None
        water[f"{side}_converged"] = r.get("converged") if ok else None
    if water["teacher_angle_deg"] is None:
        water["angle_diff_deg"] = water["oh_diff_A"] = None
    elif water["facet_angle_deg"] is None:
        water["angle_diff_deg"] = water["oh_diff_A"] = math.inf
    else:
        water["angle_diff_deg"] = abs(water["facet_angle_deg"] - water["teacher_angle_deg"])
        water["oh_diff_A"] = abs(water["facet_oh_A"] - water["teacher_oh_A"])

    values = {
        "median_lattice_error_pct": _median_with_failures(a_err),
        "median_bulk_modulus_error_pct": _median_with_failures(b_err),
        "water_angle_diff_deg": water["angle_diff_deg"],
        "phonon_max_rel_error_pct": max(ph_err) if ph_err else None,
    }
    metrics = {}
    for key, (target, unit, what) in TARGETS.items():
        v = values[key]
        metrics[key] = {
            "value": v,
            "target": target,
            "unit": unit,
            "what": what,
            "met": None if v is None else bool(v <= target),
        }
    metrics["median_lattice_error_pct"]["n"] = len(a_err)
    metrics["median_bulk_modulus_error_pct"]["n"] = len(b_err)
    return {
        "rows": eos_rows + ph_rows + [water],
        "metrics": metrics,
        "crystals_without_teacher_fit": excluded,
        "facet_without_minimum": [r["name"] for r in eos_rows if r["facet_status"] != "ok"],
    }


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
            f"(target <= {m['target']}): {_verdict(m['met'])}"
        )
    return 0


# -------------------------------------------------------------------------------- report


def _verdict(met) -> str:
    return "n/a (no teacher)" if met is None else ("met" if met else "not met")


def _f(x, spec=".3g") -> str:
    if x is not None and isinstance(x, float) and math.isinf(x):
        return "fail"
    return common.fmt(x, spec)


def plot(res: dict, path: Path) -> Path:
    plt = common.pyplot()
    rows = [r for r in res["rows"] if r["kind"] == "eos"]
    fig, axes = plt.subplots(2, 2, figsize=(11, 9))
    for ax, key, label in (
        (axes[0, 0], "a0", "lattice constant a0 (A)"),
        (axes[0, 1], "b0_GPa", "bulk modulus B0 (GPa)"),
    ):
        pts = [
            (r[f"teacher_{key}"], r[f"facet_{key}"], r["name"])
            for r in rows
            if r[f"teacher_{key}"] is not None and r[f"facet_{key}"] is not None
        ]
        if pts:
            x, y, names = zip(*pts, strict=True)
            ax.scatter(x, y, s=18)
            for xi, yi, n in pts:
                ax.annotate(n, (xi, yi), fontsize=7, xytext=(3, 3), textcoords="offset points")
            lo, hi = min(min(x), min(y)), max(max(x), max(y))
            ax.plot([lo, hi], [lo, hi], "k--", lw=0.8, label="Facet = teacher")
            if key == "b0_GPa":
                ax.set_xscale("log")
                ax.set_yscale("log")
        missing = [
            r["name"] for r in rows if r["teacher_status"] == "ok" and r["facet_status"] != "ok"
        ]
        ax.set_title(
            label + (f"\nno Facet minimum: {', '.join(missing)}" if missing else ""), fontsize=9
        )
        ax.set_xlabel("SevenNet-0 (teacher)")
        ax.set_ylabel("Facet")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    ax = axes[1, 0]
    names = [r["name"] for r in rows]
    cap = 100.0
    for k, (key, lab) in enumerate((("a_err_pct", "a0"), ("b_err_pct", "B0"))):
        vals = [min(r[key], cap) if r[key] is not None else 0.0 for r in rows]
        bars = ax.bar(
            [i + 0.4 * k for i in range(len(rows))], vals, width=0.4, label=f"{lab} error"
        )
        for bar, r in zip(bars, rows, strict=True):
            if r[key] is not None and math.isinf(r[key]):  # no Facet minimum: a failure
                bar.set_hatch("//")
                bar.set_alpha(0.5)
    ax.axhline(TARGETS["median_lattice_error_pct"][0], color="C0", ls=":", lw=0.8)
    ax.axhline(TARGETS["median_bulk_modulus_error_pct"][0], color="C1", ls=":", lw=0.8)
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set_xticks([i + 0.2 for i in range(len(rows))], names, rotation=90, fontsize=7)
    ax.set_ylabel(f"|Facet - teacher| / teacher (%), capped at {cap:g}")
    ax.set_title(
        "errors per crystal (dotted: targets 1 % and 10 %; hatched: no Facet minimum)", fontsize=9
    )
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    ax = axes[1, 1]
    xt = []
    for k, r in enumerate(r for r in res["rows"] if r["kind"] == "phonons"):
        for side, mk in (("teacher", "o"), ("facet", "x")):
            if r[f"{side}_THz"]:
                ax.scatter(
                    [k] * len(r[f"{side}_THz"]),
                    r[f"{side}_THz"],
                    marker=mk,
                    label=side if k == 0 else None,
                    color="C0" if side == "teacher" else "C3",
                )
        xt.append(r["name"])
    w = next(r for r in res["rows"] if r["kind"] == "water")
    ax.set_xticks(range(len(xt)), xt)
    ax.set_xlim(-0.7, len(xt) - 0.3)
    ax.set_ylabel("Gamma optical frequencies (THz)")
    ax.set_title(
        f"Gamma phonons; water H-O-H: teacher {_f(w['teacher_angle_deg'], '.1f')} deg, "
        f"Facet {_f(w['facet_angle_deg'], '.1f')} deg",
        fontsize=9,
    )
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    fig.suptitle(f"{res['sides']['facet']['calculator']['model']} vs SevenNet-0 (teacher)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(res: dict, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    meta, sides = res["meta"], res["sides"]
    facet, teacher = sides["facet"], sides.get("teacher")
    lines = ["# Material properties: Facet vs its teacher SevenNet-0", ""]
    lines += common.meta_lines(meta) + [""]
    tc = teacher["calculator"] if teacher else None
    lines += [
        f"Facet side: {facet['calculator']['model']}, {facet['calculator']['dtype']}. "
        "Teacher side: "
        + (f"{tc['model']} ({tc['checkpoint']}, float32)" if tc else "none")
        + f", {meta.get('teacher_from')}.",
        "",
        "Both sides run the same code (`facet.bench.properties`, pure ASE), each in its own "
        "environment. Equations of state: primitive cell at "
        f"{facet['settings']['n_points']} lattice constants within +-"
        f"{100 * facet['settings']['span']:g} % of a reference (experimental) value, third-order "
        "Birch-Murnaghan fit (`ase.eos`); a scan whose lowest energy lies at an end has no "
        "minimum and is not fitted (it counts as a failed crystal in the medians). All crystals "
        "are cubic with atoms on fixed positions (no internal relaxation; the largest residual "
        "force of each scan is in results.json). Gamma phonons: +-0.01 A finite displacements in "
        "the primitive cell at each model's own a0, no LO-TO correction; optical modes compared. "
        "Water: `molecule('H2O')` distorted, 15 A box, FIRE to fmax 0.01 eV/A.",
        "",
        "![properties](properties.png)",
        "",
        "## Summary against the targets of issue 16",
        "",
    ]
    if "metrics" not in res:
        lines += ["The Facet side failed: " + facet.get("error", "?")]
        path = out / "report.md"
        path.write_text("\n".join(lines) + "\n")
        return path
    mrows = []
    for m in res["metrics"].values():
        n = f" (n = {m['n']})" if "n" in m else ""
        mrows.append(
            [
                m["what"] + n,
                f"{_f(m['value'])} {m['unit']}",
                f"<= {m['target']:g} {m['unit']}",
                _verdict(m["met"]),
            ]
        )
    lines += common.md_table(["metric", "Facet vs teacher", "target", "status"], mrows)
    if res.get("facet_without_minimum"):
        lines += [
            "",
            "Facet scans without a fitted minimum (counted as failures): "
            + ", ".join(res["facet_without_minimum"])
            + ".",
        ]
    if res.get("crystals_without_teacher_fit"):
        lines += [
            "",
            "Crystals left out of the medians because the teacher has no fitted "
            "minimum or did not run: " + ", ".join(res["crystals_without_teacher_fit"]) + ".",
        ]
    lines += ["", "## Equations of state", ""]
    trows = []
    for r in (r for r in res["rows"] if r["kind"] == "eos"):
        note = "; ".join(
            f"{s}: {r[f'{s}_reason']}" for s in ("teacher", "facet") if r.get(f"{s}_reason")
        )
        trows.append(
            [
                r["name"],
                r["structure"],
                _f(r["teacher_a0"], ".4f"),
                _f(r["facet_a0"], ".4f"),
                _f(r["a_err_pct"], ".2f"),
                _f(r["teacher_b0_GPa"], ".1f"),
                _f(r["facet_b0_GPa"], ".1f"),
                _f(r["b_err_pct"], ".1f"),
                _f(r["teacher_bp"], ".2f"),
                _f(r["facet_bp"], ".2f"),
                note,
            ]
        )
    lines += common.md_table(
        [
            "crystal",
            "structure",
            "a0 teacher (A)",
            "a0 Facet (A)",
            "a0 err %",
            "B0 teacher (GPa)",
            "B0 Facet (GPa)",
            "B0 err %",
            "B' teacher",
            "B' Facet",
            "note",
        ],
        trows,
    )
    lines += ["", "## Gamma phonons (optical modes, THz)", ""]
    prow = []
    for r in (r for r in res["rows"] if r["kind"] == "phonons"):
        fmt_list = lambda v: "n/a" if not v else ", ".join(f"{x:.3f}" for x in v)  # noqa: E731
        prow.append(
            [
                r["name"],
                f"{_f(r['teacher_a'], '.4f')} / {_f(r['facet_a'], '.4f')}",
                fmt_list(r["teacher_THz"]),
                fmt_list(r["facet_THz"]),
                _f(r["max_rel_err_pct"], ".2f"),
            ]
        )
    lines += common.md_table(
        ["crystal", "a teacher / Facet (A)", "teacher", "Facet", "max rel. err %"], prow
    )
    w = next(r for r in res["rows"] if r["kind"] == "water")
    lines += ["", "## Water molecule (FIRE, fmax 0.01 eV/A)", ""]
    lines += common.md_table(
        ["", "H-O-H angle (deg)", "O-H (A)", "converged"],
        [
            [
                "teacher",
                _f(w["teacher_angle_deg"], ".2f"),
                _f(w["teacher_oh_A"], ".4f"),
                w["teacher_converged"],
            ],
            [
                "Facet",
                _f(w["facet_angle_deg"], ".2f"),
                _f(w["facet_oh_A"], ".4f"),
                w["facet_converged"],
            ],
            ["difference", _f(w["angle_diff_deg"], ".2f"), _f(w["oh_diff_A"], ".4f"), ""],
        ],
    )
    times = [
        f"Facet side {facet.get('time_s', 0):.0f} s of properties "
        f"({facet.get('wall_s', 0):.0f} s with start-up)"
    ]
    if teacher:
        times.append(f"teacher {teacher.get('time_s', 0):.0f} s")
    lines += ["", "Time: " + ", ".join(times) + ".", ""]
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    plot(res, out / "properties.png")
    return path
