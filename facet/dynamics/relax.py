"""Structure relaxation through ASE: FIRE with the Fréchet cell filter, one structure at a time.

The protocol is Matbench Discovery's (Riebesell et al., Nat. Mach. Intell. 2025): FIRE (Bitzek et
al., PRL 97, 170201 (2006)) on :class:`ase.filters.FrechetCellFilter` (positions and the log of
the deformation gradient relax together), converged when every generalised force row is below
``fmax`` (eV/A) or after ``steps`` steps. For many structures at once in one compiled loop see
:func:`facet.dynamics.relax_batched`, which follows the same trajectory.

Readers accept CIF, POSCAR/CONTCAR (``*.vasp``), extxyz/xyz, ASE databases (``*.db``) and
anything else :func:`ase.io.read` understands; pymatgen ``Structure``/``Molecule`` objects are
converted with :func:`to_atoms`. Every structure keeps a key (``"<file>:<index>"`` or the database
id) used in error messages and outputs.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.db import connect
from ase.filters import FrechetCellFilter
from ase.io import Trajectory, read, write
from ase.io.formats import UnknownFileTypeError, filetype, ioformats
from ase.optimize import FIRE
from tqdm.auto import tqdm

from ..errors import InputError

__all__ = [
    "RelaxResult",
    "read_structures",
    "to_atoms",
    "relax",
    "relax_many",
    "write_relaxed",
]


@dataclass
class RelaxResult:
    """Outcome of one relaxation.

    Attributes:
        key: identifier of the input structure.
        atoms: the relaxed structure (a copy) with a ``SinglePointCalculator`` holding the final
            results (energy, forces, stress, per-atom energies when computed).
        energy: final potential energy, eV.
        converged: whether ``fmax`` was reached within the step limit.
        steps: optimiser steps taken.
        fmax: final largest generalised-force row, eV/A.
        initial_energy: energy of the input structure, eV.
    """

    key: str
    atoms: Any
    energy: float
    converged: bool
    steps: int
    fmax: float
    initial_energy: float


def to_atoms(obj: Any, key: str = "") -> Any:
    """``ase.Atoms`` from an Atoms object or a pymatgen ``Structure``/``Molecule``."""
    if isinstance(obj, Atoms):
        return obj
    try:  # lazy: pymatgen.io.ase took 3.4 s to import on one loaded core (python -X importtime)
        from pymatgen.core import Molecule, Structure
        from pymatgen.io.ase import AseAtomsAdaptor
    except ImportError:  # pragma: no cover - pymatgen is a dependency
        Structure = Molecule = ()  # type: ignore[assignment]
    if isinstance(obj, Structure | Molecule):
        return AseAtomsAdaptor.get_atoms(obj)
    raise TypeError(
        f"structure {key or '?'}: expected ase.Atoms or a pymatgen Structure/Molecule, got "
        f"{type(obj).__name__}"
    )


def _read_db(path: Path) -> list[tuple[str, Any]]:
    out = []
    with connect(str(path)) as db:
        for row in db.select():
            out.append((f"{path.name}:id={row.id}", row.toatoms()))
    return out


def read_structures(
    paths: str | os.PathLike | Iterable[str | os.PathLike],
) -> list[tuple[str, Any]]:
    """Read every structure in ``paths`` as ``(key, ase.Atoms)`` pairs, in file order.

    Raises ``FileNotFoundError`` naming a missing file and :class:`facet.errors.InputError` (a
    ``ValueError``) naming a file that holds no structure or cannot be parsed (with the parser's
    message).
    """
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    out: list[tuple[str, Any]] = []
    for p in map(Path, paths):
        if not p.exists():
            raise FileNotFoundError(f"structure file {p} does not exist")
        try:
            if p.suffix == ".db":
                items = _read_db(p)
            else:
                frames = read(str(p), index=":")
                frames = frames if isinstance(frames, list) else [frames]
                items = [(f"{p.name}:{i}", a) for i, a in enumerate(frames)]
        except Exception as err:  # ASE raises many types; name the file and keep the cause
            msg = " ".join(str(err).split()) or type(err).__name__
            raise InputError(f"cannot read structures from {p}: {msg}") from err
        if not items:
            raise InputError(f"{p} holds no structure")
        for key, a in items:
            if len(a) == 0:
                raise InputError(f"{key}: structure has no atoms")
            if not np.all(np.isfinite(a.positions)):
                raise InputError(f"{key}: positions are not finite")
        out.extend(items)
    return out


def _max_row_norm(forces: np.ndarray) -> float:
    return float(np.sqrt((forces**2).sum(axis=1).max())) if len(forces) else 0.0


def _freeze_results(atoms: Any) -> None:
    """Replace a (shared) calculator by a snapshot of its results for ``atoms``, so that later
    calculations on other structures cannot change what this result reports."""

    res = dict(getattr(atoms.calc, "results", {}) or {})
    keep = ("energy", "free_energy", "forces", "stress", "energies")
    atoms.calc = SinglePointCalculator(atoms, **{k: res[k] for k in keep if k in res})


def relax(
    atoms: Any,
    calculator: Any,
    *,
    fmax: float = 0.05,
    steps: int = 500,
    relax_cell: bool = True,
    scalar_pressure: float = 0.0,
    trajectory: str | os.PathLike | None = None,
    logfile: str | os.PathLike | None = None,
    key: str = "",
) -> RelaxResult:
    """Relax one structure with FIRE (+ ``FrechetCellFilter`` when fully periodic and
    ``relax_cell``); the input is not modified.

    Args:
        atoms: ``ase.Atoms`` or a pymatgen structure.
        calculator: an ASE calculator, e.g. :class:`facet.FacetCalculator`.
        fmax: force threshold, eV/A (cell rows: ``V sigma / N``, FrechetCellFilter's scaling).
        steps: maximum number of FIRE steps.
        scalar_pressure: external pressure, eV/A^3; refused (InputError) where the cell stays
            fixed (``relax_cell=False`` or a structure not periodic in 3D).
        trajectory: ASE ``.traj`` file receiving every step (optional).
        logfile: FIRE's text log (optional; ``"-"`` for stdout).
    """

    atoms = to_atoms(atoms, key).copy()
    atoms.calc = calculator
    e0 = float(atoms.get_potential_energy())
    cell_dof = relax_cell and bool(atoms.pbc.all())
    if scalar_pressure != 0.0 and not cell_dof:
        why = "relax_cell=False" if not relax_cell else "not periodic in 3D"
        raise InputError(f"{key or atoms.get_chemical_formula()}: an external pressure acts "
                         f"through the cell, which stays fixed here ({why}); it would be ignored")
    target = FrechetCellFilter(atoms, scalar_pressure=scalar_pressure) if cell_dof else atoms
    opt = FIRE(target, logfile=None if logfile is None else str(logfile))
    if trajectory is not None:
        traj = Trajectory(str(trajectory), "w", atoms)
        opt.attach(traj.write, interval=1)
    try:
        converged = bool(opt.run(fmax=fmax, steps=steps))
    finally:
        if trajectory is not None:
            traj.close()
    fm = _max_row_norm(target.get_forces())
    energy = float(atoms.get_potential_energy())
    _freeze_results(atoms)
    return RelaxResult(
        key=key,
        atoms=atoms,
        energy=energy,
        converged=converged,
        steps=int(opt.nsteps),
        fmax=fm,
        initial_energy=e0,
    )


def relax_many(
    structures: Sequence[Any] | Sequence[tuple[str, Any]],
    calculator: Any,
    *,
    fmax: float = 0.05,
    steps: int = 500,
    relax_cell: bool = True,
    scalar_pressure: float = 0.0,
    trajectory_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> list[RelaxResult]:
    """Relax structures one after another with one calculator (its compiled programs are reused).

    ``structures`` holds Atoms/pymatgen objects or ``(key, structure)`` pairs (as returned by
    :func:`read_structures`). With ``trajectory_dir``, each run writes ``<index>.traj`` there.
    A progress bar (tqdm) shows on stderr when ``progress``.
    """
    items = [s if isinstance(s, tuple) else (str(i), s) for i, s in enumerate(structures)]
    if trajectory_dir is not None:
        Path(trajectory_dir).mkdir(parents=True, exist_ok=True)
    iterator = items
    if progress:
        iterator = tqdm(items, desc="relax", unit="structure")
    results = []
    for i, (key, s) in enumerate(iterator):
        traj = None if trajectory_dir is None else Path(trajectory_dir) / f"{i:05d}.traj"
        results.append(
            relax(
                s,
                calculator,
                fmax=fmax,
                steps=steps,
                relax_cell=relax_cell,
                scalar_pressure=scalar_pressure,
                trajectory=traj,
                key=key,
            )
        )
    return results


def output_format(path: str | os.PathLike, n_structures: int = 1) -> str:
    """The ASE format that ``path``'s extension names (``.extxyz``/``.xyz``, ``.cif``,
    ``.vasp``, ``.traj``, ...); raises :class:`facet.errors.InputError` for an extension ASE
    cannot write, or a one-structure format (POSCAR) given several structures."""

    try:
        fmt = filetype(os.fspath(path), read=False)
        io = ioformats[fmt]
    except (UnknownFileTypeError, KeyError, ValueError):
        raise InputError(
            f"output {os.fspath(path)}: ASE cannot tell a structure format from its name; use "
            "an extension such as .extxyz, .cif, .vasp or .traj"
        ) from None
    if not io.can_write:
        raise InputError(f"output {os.fspath(path)}: ASE cannot write the {fmt} format")
    if io.single and n_structures > 1:
        raise InputError(
            f"output {os.fspath(path)}: the {fmt} format holds one structure, not {n_structures};"
            " use .extxyz"
        )
    return fmt


def write_relaxed(results: Sequence[RelaxResult], path: str | os.PathLike) -> None:
    """Write relaxed structures with ``key``, ``energy``, ``initial_energy``, ``converged``,
    ``steps`` and ``fmax`` in each frame's ``info`` (forces and stress from the calculator when
    present), in the format of ``path``'s extension (:func:`output_format`; extxyz keeps every
    field, other formats what they can hold)."""

    fmt = output_format(path, len(results))

    frames = []
    for r in results:
        a = r.atoms.copy()
        res = dict(getattr(r.atoms.calc, "results", {}) or {})
        keep = {k: res[k] for k in ("energy", "forces", "stress", "free_energy") if k in res}
        a.calc = SinglePointCalculator(a, **keep) if keep else None
        a.info.update(
            key=r.key,
            relaxed_energy=r.energy,
            initial_energy=r.initial_energy,
            converged=r.converged,
            steps=r.steps,
            fmax=r.fmax,
        )
        frames.append(a)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write(str(path), frames if len(frames) != 1 else frames[0], format=fmt)
