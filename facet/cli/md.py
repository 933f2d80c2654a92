"""``facet md``: molecular dynamics of one structure (NVE, Langevin NVT, MTK NPT).

``--engine ase`` (default) steps through ASE and writes a trajectory and ASE's MD log;
``--engine jax`` runs the whole loop compiled with jax-md (NVE or NVT) and writes the final
structure and a CSV of energies and temperature every ``--log-interval`` steps.
"""

from __future__ import annotations

import argparse
import sys

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
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--timestep", type=float, default=1.0, help="fs")
    parser.add_argument("--temperature", type=float, default=300.0, help="K")
    parser.add_argument("--friction", type=float, default=0.01, help="Langevin friction, 1/fs")
    parser.add_argument("--pressure", type=float, default=0.0, help="NPT pressure, GPa")
    parser.add_argument("--log-interval", type=int, default=10)
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


# -- `facet bench md` / `facet bench relax`: selections of scripts/bench_dynamics.py ------------


def _bench_script():
    """``scripts/bench_dynamics.py`` of this source checkout (scripts are not installed)."""
    import importlib.util
    from pathlib import Path

    import facet

    path = Path(facet.__file__).resolve().parent.parent / "scripts" / "bench_dynamics.py"
    if not path.exists():
        raise FileNotFoundError(
            f"{path} not found: `facet bench md/relax` runs from a source checkout of Facet"
        )
    import sys

    name = "facet_bench_dynamics"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # dataclasses look their module up while the file executes
    spec.loader.exec_module(mod)
    return mod


def _register_bench_selections() -> None:
    from .bench import SELECTIONS, Selection, register_selection

    def make(name: str, what: str) -> Selection:
        def add(p: argparse.ArgumentParser) -> None:
            try:
                _bench_script().add_arguments(p)
            except FileNotFoundError:  # an installed copy without scripts/: run() explains
                pass
            p.set_defaults(only=name)

        def run_selection(args: argparse.Namespace) -> int:
            args.only = name
            return int(_bench_script().run(args) or 0)

        return Selection(name, what, add, run_selection)

    for name, what in (
        ("md", "MD steps/s of Facet vs MACE (ASE and jax-md), scripts/bench_dynamics.py"),
        ("relax", "relaxation speed vs MACE, SevenNet-0, CHGNet, Nequix; batched vs ASE"),
    ):
        if name not in SELECTIONS:
            register_selection(make(name, what))


_register_bench_selections()
