"""Material properties of one ASE calculator: equations of state, Gamma phonons, a water molecule.

The property code of ``facet bench properties`` (issue 16, item 5). It uses only ASE, NumPy and
SciPy (through :mod:`ase.eos`), so the same functions run in this repository's environment for a
Facet model and in the teacher's environment for SevenNet-0 (torch + sevenn, facet installed
without its dependencies); :mod:`facet.bench.properties_report` compares the two.

Run one side (writes one JSON document)::

    python -m facet.bench.properties --side facet --model default --out facet.json
    python -m facet.bench.properties --side teacher --out teacher.json   # in the teacher's venv

The measurements (crystals, equation-of-state fit, Gamma phonons, water) are in
:mod:`facet.bench.property_measures`; this module runs them for one calculator.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback

from .meta import versions
from .property_measures import (
    CRYSTALS,
    PHONON_CRYSTALS,
    Crystal,
    eos_scan,
    phonon_entry,
    relax_water,
)

# --------------------------------------------------------------------------------- one side


def compute(
    calc,
    *,
    crystals: tuple[Crystal, ...] = CRYSTALS,
    phonons: tuple[str, ...] = PHONON_CRYSTALS,
    n_points: int = 11,
    span: float = 0.06,
    water: bool = True,
    log=print,
) -> dict:
    """Every property of one calculator. A crystal the calculator cannot evaluate (for example
    an element it refuses) is a row with ``status: "error: ..."``, never left out."""
    by_name = {c.name: c for c in crystals}
    eos_rows, phonon_rows = [], []
    t_all = time.perf_counter()
    for crystal in crystals:
        t0 = time.perf_counter()
        try:
            row = eos_scan(crystal, calc, n_points=n_points, span=span)
        except Exception as err:  # noqa: BLE001 - recorded per crystal with its reason
            row = {
                "name": crystal.name,
                "formula": crystal.formula,
                "structure": crystal.structure,
                "a_ref": crystal.a_ref,
                "status": f"error: {type(err).__name__}: {err}"[:400],
            }
        row["time_s"] = time.perf_counter() - t0
        eos_rows.append(row)
        fit = (
            f"a0 {row['a0']:.4f} A, B0 {row['b0_GPa']:.1f} GPa"
            if row["status"] == "ok"
            else row.get("reason", row["status"])
        )
        log(f"  eos {crystal.name:5s} {row['status']}: {fit} ({row['time_s']:.1f} s)")
    eos_by_name = {r["name"]: r for r in eos_rows}
    for name in phonons:
        t0 = time.perf_counter()
        try:
            row = phonon_entry(by_name[name], calc, eos_by_name.get(name))
            row["status"] = "ok"
        except Exception as err:  # noqa: BLE001
            row = {"name": name, "status": f"error: {type(err).__name__}: {err}"[:400]}
        row["time_s"] = time.perf_counter() - t0
        phonon_rows.append(row)
        log(f"  phonons {name}: {row['status']} {row.get('frequencies_THz', '')}")
    water_row = None
    if water:
        t0 = time.perf_counter()
        try:
            water_row = {"status": "ok", **relax_water(calc)}
        except Exception as err:  # noqa: BLE001
            water_row = {"status": f"error: {type(err).__name__}: {err}"[:400]}
        water_row["time_s"] = time.perf_counter() - t0
        log(
            f"  water: {water_row['status']} angle {water_row.get('angle_deg')} deg, "
            f"O-H {water_row.get('oh_mean_A')} A"
        )
    return {
        "settings": {
            "n_points": n_points,
            "span": span,
            "eos": "birchmurnaghan (ase.eos)",
            "phonon_delta_A": 0.01,
            "water_fmax": 0.01,
        },
        "eos": eos_rows,
        "phonons": phonon_rows,
        "water": water_row,
        "time_s": time.perf_counter() - t_all,
    }


def make_calculator(side: str, model: str | None, dtype: str):
    """(calculator, description) for ``--side teacher`` (SevenNet-0) or ``--side facet``."""
    if side == "teacher":
        from facet.teacher.common import load_teacher, teacher_checkpoint_path

        calc = load_teacher()
        return calc, {
            "model": "SevenNet-0 (7net-0)",
            "checkpoint": os.path.basename(teacher_checkpoint_path()),
            "dtype": "float32",
            "versions": versions(["sevenn", "torch", "ase", "numpy", "scipy"]),
        }
    from facet import FacetCalculator

    calc = FacetCalculator(model=model or "default", dtype=dtype)
    return calc, {
        "model": f"Facet ({model or 'default'})",
        "dtype": dtype,
        "supported_elements": getattr(calc.model, "supported_elements", None),
        "versions": versions(["facet", "jax", "jaxlib", "flax", "ase", "numpy", "scipy"]),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m facet.bench.properties",
        description="material properties of one calculator (one side of facet bench properties)",
    )
    p.add_argument("--side", choices=["facet", "teacher"], required=True)
    p.add_argument("--model", default="default", help="Facet model: default or a run folder")
    p.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    p.add_argument("--crystals", help="comma-separated subset of the crystals (default all)")
    p.add_argument("--points", type=int, default=11)
    p.add_argument("--span", type=float, default=0.06)
    p.add_argument("--out", required=True, help="JSON file written")
    args = p.parse_args(argv)
    crystals = CRYSTALS
    if args.crystals:
        known = {c.name: c for c in CRYSTALS}
        wanted = [s.strip() for s in args.crystals.split(",") if s.strip()]
        unknown = [s for s in wanted if s not in known]
        if unknown:
            print(f"--crystals: unknown {unknown}; known: {', '.join(known)}", file=sys.stderr)
            return 2
        crystals = tuple(known[s] for s in wanted)
    t0 = time.perf_counter()
    calc, about = make_calculator(args.side, args.model, args.dtype)
    about["setup_s"] = time.perf_counter() - t0
    about["threads"] = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "XLA_FLAGS")}
    print(f"{args.side}: {about['model']}", flush=True)
    phonons = tuple(n for n in PHONON_CRYSTALS if n in {c.name for c in crystals})
    try:
        res = compute(
            calc,
            crystals=crystals,
            phonons=phonons,
            n_points=args.points,
            span=args.span,
            log=lambda m: print(m, flush=True),
        )
    except Exception:
        traceback.print_exc()
        return 1
    res["calculator"] = about
    res["side"] = args.side
    with open(args.out + ".tmp", "w") as f:
        json.dump(res, f, indent=1)
    os.replace(args.out + ".tmp", args.out)
    print(f"wrote {args.out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
