"""``facet predict``: energies, forces, stress (and per-atom energies) of unlabelled structures.

Reads any format ASE reads (extxyz, CIF, POSCAR, trajectories, ASE db), predicts in padded
batches of the model's training shape (one compilation per shape, :mod:`facet.predict`) and
writes extxyz with ASE's calculator keys.
"""

from __future__ import annotations

import argparse

from ..model_spec import DTYPES
from .options import positive_int

NAME = "predict"
HELP = "predict energies, forces and stress of structures (any ASE format) to extxyz, batched"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..dispersion import DAMPINGS

    parser.add_argument("inputs", nargs="+",
                        help="structure files: extxyz, CIF, POSCAR, ASE trajectory, *.db, ...")
    parser.add_argument("-o", "--output", required=True,
                        help="output extxyz file (ASE calculator keys energy, forces, stress, "
                             "energies)")
    parser.add_argument("--model", default="default",
                        help="a registered model name (default: the shipped model), a run or "
                             "checkpoint folder, or a preset (random weights)")
    parser.add_argument("--dtype", default=None, choices=DTYPES,
                        help="precision (default: the model's own)")
    parser.add_argument("--per-atom", action="store_true",
                        help="also write per-atom energies (ASE key 'energies')")
    parser.add_argument("--dispersion", default=None, choices=list(DAMPINGS),
                        help="add DFT-D3 dispersion for PBE from the dftd3 package "
                             "(default: none)")
    parser.add_argument("--batch-nodes", type=positive_int, default=None,
                        help="atoms per padded batch incl. one padding atom (default: the "
                             "model's training data.max_nodes)")
    parser.add_argument("--batch-edges", type=positive_int, default=None,
                        help="edges per padded batch (default: the model's data.max_edges)")
    parser.add_argument("--batch-graphs", type=positive_int, default=None,
                        help="structures per batch + 1 (default: the model's data.max_graphs)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing output file")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    from ..dynamics.relax import read_structures
    from ..errors import InputError
    from ..model_io import load_model
    from ..predict import (
        DEFAULT_BUDGET,
        Predictor,
        predict_structures,
        training_budget,
        write_predictions,
    )

    out = Path(args.output)
    if out.suffix.lower() not in (".extxyz", ".xyz"):
        raise InputError(f"-o {out}: facet predict writes extxyz; name the file *.extxyz")
    if any(out.resolve() == Path(p).resolve() for p in args.inputs):
        raise InputError(f"-o {out} is one of the inputs; choose another output file")
    if out.exists() and not args.overwrite:
        raise InputError(f"-o {out} exists; pass --overwrite to replace it")
    if args.batch_graphs is not None and args.batch_graphs < 2:
        raise InputError("--batch-graphs must be >= 2 (one slot is padding)")
    items = read_structures(args.inputs)
    budget = list(training_budget(args.model) or DEFAULT_BUDGET)
    for k, v in enumerate((args.batch_nodes, args.batch_edges, args.batch_graphs)):
        if v is not None:
            budget[k] = v
    predictor = Predictor(load_model(args.model, args.dtype))
    keys = [k for k, _ in items]
    structures = [a for _, a in items]
    t0 = time.perf_counter()
    results = predict_structures(predictor.model, structures, keys=keys, budget=tuple(budget),
                                 per_atom=args.per_atom, dispersion=args.dispersion,
                                 progress=not args.no_progress, predictor=predictor)
    dt = time.perf_counter() - t0
    write_predictions(structures, results, out, keys=keys)
    n_atoms = sum(len(a) for a in structures)
    print(f"{len(results)} structures ({n_atoms} atoms) in {dt:.1f} s "
          f"({len(results) / dt:.1f} structures/s incl. {predictor.compile_count} compilation(s)"
          f"; batch {budget[0]} nodes / {budget[1]} edges / {budget[2]} graphs); wrote {out}")
    return 0
