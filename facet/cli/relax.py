"""``facet relax``: relax structures (CIF, POSCAR, extxyz, ASE db) with FIRE + FrechetCellFilter.

One structure at a time through ASE (default), or all at once in one compiled loop with
``--batched``. Writes the relaxed structures with their energies to an extxyz file and, on
request, one ASE trajectory per structure.
"""

from __future__ import annotations

import argparse

from ..model_spec import DTYPES
from .options import finite_float, non_negative_int, positive_float

NAME = "relax"
HELP = "relax structures with FIRE and the Frechet cell filter (ASE or batched in JAX)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", help="structure files: CIF, POSCAR, extxyz, *.db")
    parser.add_argument(
        "--model",
        default="default",
        help="a checkpoint path, a registered model name or a preset (random weights)",
    )
    parser.add_argument("--dtype", default="float32", choices=DTYPES)
    from ..dispersion import DAMPINGS

    parser.add_argument(
        "--dispersion", default=None, choices=list(DAMPINGS),
        help="add DFT-D3 dispersion (PBE parameters, dftd3 package) to the model (default: none)",
    )
    parser.add_argument("--fmax", type=positive_float, default=0.05, help="force threshold, eV/A")
    parser.add_argument("--steps", type=non_negative_int, default=500, help="maximum FIRE steps")
    parser.add_argument("--fixed-cell", action="store_true", help="relax positions only")
    parser.add_argument("--pressure", type=finite_float, default=0.0, help="external pressure, GPa")
    parser.add_argument(
        "--batched",
        action="store_true",
        help="relax all structures together in one compiled JAX loop (facet.dynamics)",
    )
    parser.add_argument(
        "-o",
        "--output",
        default="relaxed.extxyz",
        help="output file; its extension names the format (extxyz keeps every field)",
    )
    parser.add_argument("--trajectory-dir", help="write one ASE .traj per structure here")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> int:
    from ase import units

    from ..calculator import FacetCalculator
    from ..dynamics.relax import (
        RelaxResult,
        output_format,
        read_structures,
        relax_many,
        write_relaxed,
    )
    from ..elements import check_supported
    from ..errors import InputError

    items = read_structures(args.inputs)
    output_format(args.output, len(items))  # refuse an output format ASE cannot write first
    if args.batched and args.trajectory_dir:
        raise InputError("--trajectory-dir is not available with --batched")
    if args.batched and args.dtype == "float64":
        raise InputError("--batched runs in float32 here; use the Python API for float64")
    if args.batched and args.dispersion:
        raise InputError("--dispersion is not available with --batched (it runs the model only)")
    calc = FacetCalculator(model=args.model, dtype=args.dtype, dispersion=args.dispersion)
    for key, atoms in items:  # every structure is checked before any is relaxed
        check_supported(calc.model, atoms.numbers, key)
        probe = atoms.copy()
        probe.calc = calc
        probe.get_potential_energy()  # overlapping atoms, NaN: refused with the structure's key
    pressure = args.pressure * units.GPa
    if pressure != 0.0 and args.fixed_cell:
        raise InputError("--pressure acts through the cell; with --fixed-cell it would be ignored")
    for key, atoms in items:
        if pressure != 0.0 and not atoms.pbc.all():
            raise InputError(f"{key}: --pressure acts through the cell, and this structure is "
                             "not periodic in 3D (its cell stays fixed)")
    if args.batched:
        from ..dynamics import BatchedFIRE, FireConfig

        fire = BatchedFIRE(calc.model, FireConfig(scalar_pressure=pressure))
        res = fire.relax(
            [a for _, a in items],
            fmax=args.fmax,
            max_steps=args.steps,
            relax_cell=not args.fixed_cell,
        )
        initial = res.initial_energies
        results = [
            RelaxResult(key, a, float(e), bool(c), int(s), float(f), e0)
            for (key, _), a, e, c, s, f, e0 in zip(
                items,
                res.atoms,
                res.energies,
                res.converged,
                res.steps,
                res.fmax,
                initial,
                strict=True,
            )
        ]
    else:
        results = relax_many(
            items,
            calc,
            fmax=args.fmax,
            steps=args.steps,
            relax_cell=not args.fixed_cell,
            scalar_pressure=pressure,
            trajectory_dir=args.trajectory_dir,
            progress=not args.no_progress,
        )
    write_relaxed(results, args.output)
    n_conv = sum(r.converged for r in results)
    for r in results:
        flag = "" if r.converged else "  (NOT converged)"
        print(f"{r.key}: E = {r.energy:.6f} eV after {r.steps} steps, fmax {r.fmax:.4f}{flag}")
    print(f"{n_conv}/{len(results)} converged; wrote {args.output}")
    return 0 if n_conv == len(results) else 1
