"""``facet md``: molecular dynamics of one structure (NVE, Langevin NVT, MTK NPT).

``--engine ase`` (default) steps through ASE and writes a trajectory and ASE's MD log;
``--engine jax`` runs the whole loop compiled with jax-md (NVE or NVT) and writes a trajectory
and a CSV of energies and temperature. Both record step 0, every ``--log-interval`` steps and the
last step, and write the final structure. Outputs are named after the input
(``<stem>_md.traj``, ``<stem>_md.log``, ``<stem>_md_final.extxyz`` in the working directory)
unless given; an output that names the input is refused.
"""

from __future__ import annotations

import argparse

from ..model_spec import DTYPES
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
    parser.add_argument("--dtype", default="float32", choices=DTYPES)
    from ..dispersion import DAMPINGS

    parser.add_argument(
        "--dispersion", default=None, choices=list(DAMPINGS),
        help="add DFT-D3 dispersion (PBE parameters, dftd3 package) to the model (default: none)",
    )
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
    parser.add_argument(
        "--trajectory",
        default=None,
        help="trajectory file, every --log-interval steps and the last (both engines); "
        "default: <input stem>_md.traj in the working directory",
    )
    parser.add_argument(
        "--log",
        default=None,
        help="log file (ase: MD log; jax: CSV); default: <input stem>_md.log",
    )
    parser.add_argument(
        "-o", "--output", default=None, help="final structure (default: <stem>_md_final.extxyz)"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def output_paths(args: argparse.Namespace) -> dict[str, str]:
    """The output files, named after the input unless given; refuses an output that is the
    input (or another output) so that no run overwrites what it reads."""
    from pathlib import Path

    from ..dynamics.relax import output_format
    from ..errors import InputError

    stem = Path(args.input).stem
    out = {
        "--trajectory": args.trajectory or f"{stem}_md.traj",
        "--log": args.log or f"{stem}_md.log",
        "--output": args.output or f"{stem}_md_final.extxyz",
    }
    source = Path(args.input).resolve()
    seen: dict[Path, str] = {}
    for opt, path in out.items():
        p = Path(path).resolve()
        if p == source:
            raise InputError(f"{opt} {path} is the input file; choose another name")
        if p in seen:
            raise InputError(f"{opt} and {seen[p]} both name {path}; choose different names")
        if Path(path).is_dir():
            raise InputError(f"{opt} {path} is a directory")
        seen[p] = opt
    if not out["--trajectory"].endswith(".traj"):
        output_format(out["--trajectory"], 2)
    output_format(out["--output"])
    return out


def _read_input(args: argparse.Namespace):
    """(key, atoms) of the frame to run, refusing a combination the engines cannot run."""
    from ..dynamics.relax import read_structures
    from ..errors import InputError

    items = read_structures(args.input)
    if not 0 <= args.index < len(items):
        raise InputError(
            f"{args.input} has {len(items)} frames; --index {args.index} is out of range"
        )
    key, atoms = items[args.index]
    if args.ensemble == "npt" and not atoms.pbc.all():
        raise InputError(
            f"{key}: NPT needs a structure periodic in all three directions "
            f"(pbc = {atoms.pbc.tolist()}); use --ensemble nve or nvt"
        )
    if args.engine == "jax" and args.ensemble == "npt":
        raise InputError("--engine jax supports nve and nvt; use --engine ase for npt")
    if args.engine == "jax" and args.dispersion:
        raise InputError("--dispersion needs --engine ase (the jax engine runs the model only)")
    return key, atoms


def _run_jax(args: argparse.Namespace, calc, atoms, paths: dict[str, str], progress):
    """The compiled jax-md run: writes the CSV log and the trajectory; returns (final atoms,
    times fs, potential and kinetic energies, temperatures) of the records."""
    import numpy as np
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary

    from ..dynamics.jaxmd import JaxMD, JaxMDConfig

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
        record_positions=True,
    )
    res = JaxMD(calc.model, cfg, dtype=args.dtype).run(
        atoms, args.steps, seed=args.seed, progress=progress
    )
    t_fs = res.steps * args.timestep
    epot, ekin, temp = (
        res.potential_energy[:, 0],
        res.kinetic_energy[:, 0],
        res.temperature[:, 0],
    )
    table = np.column_stack([res.steps, t_fs, epot, ekin, epot + ekin, temp])
    np.savetxt(
        paths["--log"],
        table,
        delimiter=",",
        fmt="%.8g",
        header="step,time_fs,epot_eV,ekin_eV,etot_eV,temperature_K",
        comments="",
    )
    _write_jax_trajectory(paths["--trajectory"], atoms, res)
    return res.atoms[0], t_fs, epot, ekin, temp


def _run_ase(args: argparse.Namespace, calc, atoms, paths: dict[str, str], progress):
    """The ASE run (trajectory and MD log written as it goes); returns what :func:`_run_jax`
    returns."""
    from ..dynamics.md import MDSettings, run_md

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
        atoms,
        calc,
        args.steps,
        settings,
        trajectory=paths["--trajectory"],
        logfile=paths["--log"],
        progress=progress,
    )
    return out.atoms, out.time_fs, out.potential_energy, out.kinetic_energy, out.temperature


def run(args: argparse.Namespace) -> int:
    from ase.io import write
    from tqdm.auto import tqdm

    from ..calculator import FacetCalculator
    from ..dynamics.md import energy_drift
    from ..elements import check_supported

    key, atoms = _read_input(args)
    paths = output_paths(args)
    calc = FacetCalculator(model=args.model, dtype=args.dtype, dispersion=args.dispersion)
    check_supported(calc.model, atoms.numbers, key)
    probe = atoms.copy()
    probe.calc = calc
    probe.get_potential_energy()  # refuses overlapping atoms or NaN before any file is written
    bar = tqdm(total=args.steps, desc="md", unit="step", disable=args.no_progress)

    def progress(done: int) -> None:
        bar.update(done - bar.n)

    engine = _run_jax if args.engine == "jax" else _run_ase
    final, t_fs, epot, ekin, temp = engine(args, calc, atoms, paths, progress)
    bar.close()
    write(paths["--output"], final)
    print(
        f"{key}: {args.steps} {args.ensemble} steps of {args.timestep} fs; "
        f"final (step {args.steps}) T = {temp[-1]:.1f} K, E_pot = {epot[-1]:.6f} eV"
    )
    if args.ensemble == "nve" and len(t_fs) > 1:
        drift = energy_drift(t_fs, epot + ekin, len(final))
        print(f"energy drift {drift:.3e} eV/atom/ps")
    print(f"wrote {paths['--output']}, {paths['--log']} and {paths['--trajectory']}")
    return 0


def _write_jax_trajectory(path: str, atoms, res) -> None:
    """The records of a compiled run (positions, potential energy, step) as a trajectory."""
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.io import write

    frames = []
    for k in range(len(res.steps)):
        a = atoms.copy()
        a.positions = res.positions[k]
        a.calc = SinglePointCalculator(a, energy=float(res.potential_energy[k, 0]))
        a.info["step"] = int(res.steps[k])
        frames.append(a)
    if str(path).endswith(".traj"):
        from ase.io import Trajectory

        with Trajectory(str(path), "w") as traj:
            for a in frames:
                traj.write(a)
    else:
        write(str(path), frames)
