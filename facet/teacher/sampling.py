"""Per-material sampling of configurations, labelled on the fly by SevenNet-0 (teacher env only).

For one starting material (``facet.teacher.structures.MaterialSpec``) and a :class:`Profile`:

1. supercell: repeat the cell until it holds at least ``n_min`` atoms (``n_min`` drawn per
   material from ``profile.min_atoms``), at most ``profile.max_atoms``;
2. calc 0, static single points: a search for the teacher's equilibrium volume by isotropic
   scaling s of the cell, driving the pressure P(s) = -tr(sigma)/3 to zero: the first step
   assumes a bulk modulus of 100 GPa (dP/ds = -3B), then ``n_volume_steps`` secant steps (each
   step at most 8 %, s kept in [0.75, 1.3]); every point is recorded; then the structure at
   the final secant estimate s*, random symmetric strains
   (|eps_ij| <= strain_max, off-diagonal halved), Gaussian rattles (sigma uniform in
   [0.01, rattle_max] A) and strain+rattle combinations;
3. calc 1: a short FIRE relaxation (Bitzek et al., PRL 97, 170201 (2006)) of positions and cell
   through ASE's FrechetCellFilter, from a strained and rattled start, every step recorded;
4. calc 2-4: short Langevin MD (ASE ``Langevin``, friction 0.01/fs, 2 fs steps, 1 fs if H, Li
   or Be is present) at ``md_per_material`` of the temperatures 300/800/1500 K, from Maxwell-
   Boltzmann velocities, every ``md_stride``-th step recorded.

Randomness: one ``numpy.random.Generator`` per material, seeded with (seed, crc32(name)), so a
material's frames do not depend on which other materials are generated or in what order.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
from ase import Atoms, units

from facet.teacher.common import (
    MD_CALC_ID,
    MP2020,
    TeacherError,
    collapsed_pair,
    compact_frame,
    extxyz_atoms,
    label,
    mptrj_frame,
)
from facet.teacher.structures import MaterialSpec, supercell_for


@dataclass(frozen=True)
class Profile:
    n_volume_steps: int
    n_strain: int
    strain_max: float
    n_rattle: int
    rattle_max: float  # A
    n_strain_rattle: int
    relax_steps: int
    md_temperatures: tuple[float, ...]
    md_per_material: int
    md_steps: int
    md_stride: int
    min_atoms: tuple[int, int]  # supercell target drawn uniformly in [lo, hi]
    max_atoms: int

    def frames_per_material(self) -> int:
        static = 1 + self.n_volume_steps + 1 + self.n_strain + self.n_rattle + self.n_strain_rattle
        md = self.md_per_material * (self.md_steps // self.md_stride)
        return static + self.relax_steps + md


def strained(atoms: Atoms, rng: np.random.Generator, strain_max: float) -> Atoms:
    """A copy with the cell (and atoms) under a random symmetric strain: each component drawn
    uniformly in [-strain_max, strain_max], symmetrised, the off-diagonal ones halved."""
    eps = rng.uniform(-strain_max, strain_max, size=(3, 3))
    eps = 0.5 * (eps + eps.T)
    eps[~np.eye(3, dtype=bool)] *= 0.5
    out = atoms.copy()
    out.set_cell(atoms.cell[:] @ (np.eye(3) + eps), scale_atoms=True)
    return out


def rattled(atoms: Atoms, rng: np.random.Generator, rattle_max: float) -> Atoms:
    """A copy with Gaussian displacements of every atom, sigma drawn uniformly in
    [0.01, rattle_max] A."""
    sigma = rng.uniform(0.01, rattle_max)
    out = atoms.copy()
    out.positions = atoms.positions + rng.normal(0.0, sigma, size=(len(atoms), 3))
    return out


def scaled(atoms: Atoms, s: float) -> Atoms:
    """A copy with the cell (and atoms) scaled isotropically by ``s``."""
    out = atoms.copy()
    out.set_cell(atoms.cell[:] * s, scale_atoms=True)
    return out


class Recorder:
    """Labels atoms with the teacher and appends MPTrj frames (+ extxyz copies) in order.

    ``compact``: frames as :func:`facet.teacher.common.compact_frame` writes them (the sharded
    sets), else :func:`facet.teacher.common.mptrj_frame` (the full MPTrj dicts).
    """

    def __init__(self, mp_id: str, calc, mp2020: MP2020, keep_extxyz: bool = False,
                 compact: bool = False):
        self.mp_id, self.calc, self.mp2020, self.keep_extxyz = mp_id, calc, mp2020, keep_extxyz
        self.frame_fn = compact_frame if compact else mptrj_frame
        self.frames: dict[str, dict] = {}
        self.extxyz: list[Atoms] = []
        self.mp2020_status: dict[str, int] = {}
        self.dropped: list[str] = []

    def record(self, atoms: Atoms, calc_id: int, step: int, kind: str = "") -> float | None:
        if atoms.calc is not self.calc:
            atoms.calc = self.calc
        frame_id = f"{self.mp_id}-{calc_id}-{step}"
        collapsed = collapsed_pair(atoms)
        if collapsed is not None:  # not labelled: counted in the material's ``dropped``
            self.dropped.append(f"{frame_id}: collapsed: {collapsed}")
            return None
        try:
            energy, forces, stress = label(atoms)
        except TeacherError as exc:
            self.dropped.append(f"{frame_id}: {exc}")
            return None
        frame, status = self.frame_fn(atoms, energy, forces, stress, self.mp_id, self.mp2020)
        self.frames[frame_id] = frame
        self.mp2020_status[status] = self.mp2020_status.get(status, 0) + 1
        if self.keep_extxyz:
            self.extxyz.append(extxyz_atoms(atoms, frame, frame_id, kind))
        return energy


_B_GUESS = 100.0 * units.GPa  # eV/A^3, first-step bulk modulus guess
_MAX_STEP, _S_MIN, _S_MAX = 0.08, 0.75, 1.3


def next_scale(s: list[float], p: list[float]) -> float:
    """Secant step on P(s) = 0 (P decreases with s); falls back to the bulk-modulus guess."""
    slope = -3.0 * _B_GUESS
    if len(s) >= 2 and s[-1] != s[-2]:
        secant = (p[-1] - p[-2]) / (s[-1] - s[-2])
        if secant < 0:
            slope = secant
    step = float(np.clip(-p[-1] / slope, -_MAX_STEP, _MAX_STEP))
    return float(np.clip(s[-1] + step, _S_MIN, _S_MAX))


def volume_search(rec: Recorder, base: Atoms, n_points: int, kind: str = "") -> tuple[float, int]:
    """Up to ``n_points`` recorded single points (calc 0, steps 0, 1, ...) of ``base`` scaled by
    s, each s the secant estimate (:func:`next_scale`) of the zero of P(s) from the points
    before; stops at the first frame the teacher cannot label. Returns (the next estimate s*,
    the next free step)."""
    step = 0
    s_hist, p_hist = [1.0], []
    for _ in range(n_points):
        atoms = scaled(base, s_hist[-1])
        if rec.record(atoms, 0, step, kind) is None:
            break
        p_hist.append(-float(np.trace(atoms.get_stress(voigt=False))) / 3.0)
        s_hist.append(next_scale(s_hist[:len(p_hist)], p_hist))
        step += 1
    return s_hist[-1], step


def record_relaxation(rec: Recorder, start: Atoms, calc, steps: int, cell: bool = True,
                      kind: str = "") -> None:
    """FIRE (maxstep 0.1 A) from ``start``, positions and, with ``cell``, the cell through ASE's
    FrechetCellFilter; every configuration recorded as calc 1 (the observer runs before the
    first step and after each, ``steps`` frames in all)."""
    from ase.filters import FrechetCellFilter
    from ase.optimize import FIRE

    start.calc = calc
    opt = FIRE(FrechetCellFilter(start) if cell else start, logfile=None, maxstep=0.1)
    counter = [0]

    def _observe():
        rec.record(start, 1, counter[0], kind)
        counter[0] += 1

    opt.attach(_observe, interval=1)
    opt.run(fmax=1e-12, steps=steps - 1)


def langevin_frames(rec: Recorder, eq: Atoms, rng: np.random.Generator, calc, *, temp: float,
                    dt: float, friction: float, snapshots: int, stride: int, calc_id: int,
                    kind: str = "") -> None:
    """Langevin MD (ASE, fixed centre of mass) at ``temp`` K from ``eq`` rattled by up to 0.03 A
    with Maxwell-Boltzmann velocities; ``snapshots`` frames, one every ``stride`` steps, recorded
    as ``calc_id``. A frame the teacher cannot label ends the trajectory (its reason is in
    ``rec.dropped``)."""
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary

    atoms = rattled(eq, rng, 0.03)
    atoms.calc = calc
    MaxwellBoltzmannDistribution(atoms, temperature_K=temp, rng=rng)
    Stationary(atoms)
    dyn = Langevin(atoms, dt, temperature_K=temp, friction=friction, fixcm=True, rng=rng)
    for k in range(snapshots):
        dyn.run(stride)
        if rec.record(atoms, calc_id, (k + 1) * stride, kind) is None:
            break


def _static_frames(rec: Recorder, eq: Atoms, rng: np.random.Generator, profile: Profile,
                   step: int) -> None:
    """Calc 0 after the volume search: the equilibrium, strains, rattles, strain+rattles."""
    rec.record(eq, 0, step, "equilibrium")
    step += 1
    for _ in range(profile.n_strain):
        rec.record(strained(eq, rng, profile.strain_max), 0, step, "strain")
        step += 1
    for _ in range(profile.n_rattle):
        rec.record(rattled(eq, rng, profile.rattle_max), 0, step, "rattle")
        step += 1
    for _ in range(profile.n_strain_rattle):
        rec.record(rattled(strained(eq, rng, profile.strain_max), rng, profile.rattle_max),
                   0, step, "strain+rattle")
        step += 1


def _md_frames(rec: Recorder, eq: Atoms, rng: np.random.Generator, profile: Profile,
               calc) -> list[float]:
    """Calc 2-4: Langevin MD at ``md_per_material`` of the profile's temperatures."""
    light = bool(set(eq.get_chemical_symbols()) & {"H", "Li", "Be"})
    dt = (1.0 if light else 2.0) * units.fs
    chosen = sorted(rng.choice(len(profile.md_temperatures), size=profile.md_per_material,
                               replace=False).tolist())
    md_temps = []
    for idx in chosen:
        temp = float(profile.md_temperatures[idx])
        md_temps.append(temp)
        langevin_frames(rec, eq, rng, calc, temp=temp, dt=dt, friction=0.01 / units.fs,
                        snapshots=profile.md_steps // profile.md_stride,
                        stride=profile.md_stride, calc_id=MD_CALC_ID[temp],
                        kind=f"md-{int(temp)}K")
    return md_temps


def generate_material(spec: MaterialSpec, mp_id: str, profile: Profile, seed: int, calc,
                      mp2020: MP2020, keep_extxyz: bool = False) -> dict:
    """All frames of one material; returns frames, extxyz atoms and metadata."""
    from pymatgen.core import Composition

    rng = np.random.default_rng([seed, zlib.crc32(spec.name.encode())])
    unsupported = sorted(set(spec.atoms.get_chemical_symbols())
                         - {sym for sym in _teacher_symbols(calc)})
    meta = {"mp_id": mp_id, "name": spec.name, "source": spec.source,
            "prototype": spec.prototype, "radius_scaled": spec.radius_scaled}
    if unsupported:
        meta.update(n_frames=0, skipped=f"elements not supported by the teacher: {unsupported}")
        return {"frames": {}, "extxyz": [], "meta": meta}

    n_min = int(rng.integers(profile.min_atoms[0], profile.min_atoms[1] + 1))
    base = supercell_for(spec.atoms, n_min, profile.max_atoms)
    base = Atoms(base.numbers, positions=base.positions, cell=base.cell[:], pbc=True)
    if len(base) > profile.max_atoms:
        meta.update(n_frames=0, skipped=f"{len(base)} atoms > max_atoms {profile.max_atoms}")
        return {"frames": {}, "extxyz": [], "meta": meta}
    rec = Recorder(mp_id, calc, mp2020, keep_extxyz)

    # calc 0: equilibrium-volume search, equilibrium, strains, rattles, both.
    s_eq, step = volume_search(rec, base, profile.n_volume_steps + 1, "volume-search")
    eq = scaled(base, s_eq)
    _static_frames(rec, eq, rng, profile, step)
    # calc 1: FIRE on positions and cell.
    if profile.relax_steps > 0:
        start = rattled(strained(eq, rng, profile.strain_max), rng, profile.rattle_max)
        record_relaxation(rec, start, calc, profile.relax_steps, kind="fire-relax")
    md_temps = _md_frames(rec, eq, rng, profile, calc)

    formula = Composition(base.get_chemical_formula()).reduced_formula
    meta.update(formula=formula, n_atoms=len(base), equilibrium_scale=round(s_eq, 6),
                md_temperatures_K=md_temps, n_frames=len(rec.frames),
                mp2020=rec.mp2020_status, dropped=rec.dropped)
    return {"frames": rec.frames, "extxyz": rec.extxyz, "meta": meta}


def _teacher_symbols(calc) -> list[str]:
    from ase.data import chemical_symbols

    return [chemical_symbols[int(z)] for z in calc.type_map]
