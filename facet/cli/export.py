"""``facet export``: write a model as a lammps-jax bundle for LAMMPS' ``pair_style jax/kk``.

See :mod:`facet.lammps` and docs/lammps.md.
"""

from __future__ import annotations

import argparse
import sys

from ..model_spec import DTYPES


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value

NAME = "export"
HELP = "export a model as a lammps-jax bundle for LAMMPS (pair_style jax/kk)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "model",
        help="a registered model name (default), a training run or checkpoint directory",
    )
    parser.add_argument(
        "-o", "--output", required=True, help="bundle file to write (*.lammps-jax.json)"
    )
    parser.add_argument(
        "--elements",
        nargs="+",
        required=True,
        metavar="EL",
        help="element of each LAMMPS atom type, type 1 first (for example: --elements Si O)",
    )
    parser.add_argument(
        "--max-atoms",
        type=positive_int,
        required=True,
        help="atoms per MPI rank, owned plus ghost (the ghost shell is num_layers x cutoff + skin)",
    )
    parser.add_argument(
        "--edges-per-atom",
        type=positive_int,
        required=True,
        help="neighbours per atom within the cutoff, with margin (max_edges = max_atoms x this)",
    )
    parser.add_argument(
        "--platform",
        default="cpu",
        choices=["cpu", "cuda"],
        help="PJRT plugin that will run the bundle: cpu (Kokkos OpenMP) or cuda",
    )
    parser.add_argument("--dtype", default="float32", choices=DTYPES)
    parser.add_argument("--force", action="store_true", help="replace an existing output file")


def run(args: argparse.Namespace) -> int:
    from ..lammps import export_lammps

    try:
        bundle = export_lammps(
            args.model,
            args.output,
            elements=args.elements,
            max_atoms=args.max_atoms,
            edges_per_atom=args.edges_per_atom,
            platform=args.platform,
            dtype=args.dtype,
            overwrite=args.force,
            source=args.model,
        )
    except (ValueError, FileExistsError, FileNotFoundError, ImportError) as err:
        print(f"facet export: error: {err}", file=sys.stderr)
        return 2
    c, f = bundle["contract"], bundle["facet"]
    types = ", ".join(f"{k} = {el}" for k, el in enumerate(f["type_elements"], start=1))
    print(
        f"wrote {args.output}: {c['precision']} for {bundle['export_info']['platform']}, cutoff "
        f"{c['cutoff']} A, n_hops {c['n_hops']}, max_atoms {c['max_atoms']}, max_edges "
        f"{c['max_edges']}; LAMMPS types: {types}; units metal, newton on"
    )
    return 0
