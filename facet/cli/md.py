"""``facet md``: molecular dynamics of one structure (NVE, Langevin NVT, MTK NPT).

``--engine ase`` (default) steps through ASE and writes a trajectory and ASE's MD log;
``--engine jax`` runs the whole loop compiled with jax-md (NVE or NVT) and writes the final
structure and a CSV of energies and temperature every ``--log-interval`` steps.
"""

from __future__ import annotations

import argparse
import sys

from .options import (
    finite_float,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
)

NAME = "md"
HELP = "run molecular dynamics (NVE, NVT Langevin, NPT) through ASE or compiled with jax-md"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="structure file (the first frame is used unless --index)")
    parser.add_argument("--index", type=int, default=0, help="frame of the input file")
    parser.add_argument(
        "--model", default="default", help="a checkpoint path, a registered model name or a preset"
    )
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--ensemble", default="nve", choices=["nve", "nvt", "npt"])
    parser.add_argument("--engine", default="ase", choices=["ase", "jax"])
    parser.add_argument("--steps", type=non_negative_int, default=1000, help="MD steps")
    parser.add_argument("--timestep", type=positive_float, default=1.0, help="fs")
    parser.add_argument("--temperature", type=non_negative_float, default=300.0, help="K")
    parser.add_argument(
        "--friction", type=non_negative_float, default=0.01, help="Langevin friction, 1/fs"
    )
    parser.add_argument("--pressure", type=finite_float, default=0.0, help="NPT pressure, GPa")
    parser.add_argument(
        "--log-interval", type=positive_int, default=10, help="log and trajectory every N steps"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--trajectory", default="md.traj", help="trajectory file (ase engine)")
    parser.add_argument("--log", default="md.log", help="log file (ase: MD log; jax: CSV)")
    parser.add_argument("-o", "--output", default="md_final.extxyz", help="final structure")


def run(args: argparse.Namespace) -> int:
    import numpy as np
    from ase.io import write
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary

    from ..calculator import FacetCalculator
    from ..md import MDSettings, energy_drift, run_md
    from ..relax import read_structures

    items = read_structures(args.input)
    if not 0 <= args.index < len(items):
        print(
            f"{args.input} has {len(items)} frames; --index {args.index} is out of range",
            file=sys.stderr,
        )
        return 2
    key, atoms = items[args.index]
    calc = FacetCalculator(model=args.model, dtype=args.dtype)
    if args.engine == "jax":
        if args.ensemble == "npt":
            print("--engine jax supports nve and nvt; use --engine ase for npt", file=sys.stderr)
            return 2
        from ..batched.md import JaxMD, JaxMDConfig

        if not np.any(atoms.get_momenta()) and args.temperature > 0:
            MaxwellBoltzmannDistribution(
                atoms, temperature_K=args.temperature, rng=np.random.default_rng(args.seed)
            )
            Stationary(atoms)
        cfg = JaxMDConfig(
            ensemble=args.ensemble,
            timestep_fs=args.timestep,
            temperature_K=args.temperature,
            friction_per_fs=args.friction,
            log_interval=args.log_interval,
        )
        res = JaxMD(calc.model, cfg, dtype=args.dtype).run(atoms, args.steps, seed=args.seed)
        final = res.atoms[0]
        t_fs = res.steps * args.timestep
        epot, ekin, temp = (
            res.potential_energy[:, 0],
            res.kinetic_energy[:, 0],
            res.temperature[:, 0],
        )
        table = np.column_stack([res.steps, t_fs, epot, ekin, epot + ekin, temp])
        np.savetxt(
            args.log,
            table,
            delimiter=",",
            fmt="%.8g",
            header="step,time_fs,epot_eV,ekin_eV,etot_eV,temperature_K",
            comments="",
        )
    else:
        settings = MDSettings(
            ensemble=args.ensemble,
            timestep_fs=args.timestep,
            temperature_K=args.temperature,
            friction_per_fs=args.friction,
            pressure_GPa=args.pressure,
            log_interval=args.log_interval,
            seed=args.seed,
        )
        out = run_md(
            atoms, calc, args.steps, settings, trajectory=args.trajectory, logfile=args.log
        )
        final, t_fs, epot, ekin, temp = (
            out.atoms,
            out.time_fs,
            out.potential_energy,
            out.kinetic_energy,
            out.temperature,
        )
    write(args.output, final, format="extxyz")
    print(
        f"{key}: {args.steps} {args.ensemble} steps of {args.timestep} fs; "
        f"final T = {temp[-1]:.1f} K, E_pot = {epot[-1]:.6f} eV"
    )
    if args.ensemble == "nve" and len(t_fs) > 1:
        drift = energy_drift(t_fs, epot + ekin, len(final))
        print(f"energy drift {drift:.3e} eV/atom/ps")
    print(
        f"wrote {args.output} and {args.log}"
        + (f" and {args.trajectory}" if args.engine == "ase" else "")
    )
    return 0
