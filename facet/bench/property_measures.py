"""The measurements of ``facet bench properties`` on one ASE calculator: equations of state,
Gamma phonons, a water molecule.

Pure ASE, NumPy and SciPy (through :mod:`ase.eos`), so that they run unchanged in the teacher's
environment; :mod:`facet.bench.properties` runs them for one side.

Properties (units: A, eV, GPa, THz, degrees):

* **Equation of state** (:func:`eos_scan`, :func:`fit_birch_murnaghan`): the primitive cell of
  each crystal of :data:`CRYSTALS` at ``n_points`` lattice constants spread evenly over
  ``+-span`` (fraction) around its reference lattice constant (experimental, used only as the
  centre of the scan); the third-order Birch-Murnaghan form of :class:`ase.eos.EquationOfState`
  ('birchmurnaghan') is fitted to E(V), giving V0 (hence a0 = a_ref (V0/V_ref)^(1/3)), E0, B0 and
  B0'. A scan whose lowest energy is at either end has **no minimum inside the scan**: it is
  recorded as such (status ``"no minimum"``) and not fitted. Positions are relaxed at each
  lattice constant (FIRE, fixed cell) only for crystals with free internal coordinates; every
  crystal of :data:`CRYSTALS` is cubic with atoms on fixed Wyckoff positions, so none is relaxed,
  and the largest residual force of each scan is recorded to show it (zero by symmetry).
* **Gamma phonons** (:func:`gamma_frequencies`): central finite differences of the forces for
  +-``delta`` displacements of every atom of the primitive cell along x, y, z; every periodic image
  moves with its atom, so the force constants are the q = 0 sums and the frequencies are exact
  at Gamma (up to the finite difference). Frequencies are the square roots of the eigenvalues of
  the mass-weighted, symmetrised force-constant matrix, in THz; an imaginary mode is reported as
  a negative frequency. No non-analytic (LO-TO) correction: neither model has Born charges.
* **Water** (:func:`relax_water`): ASE's ``molecule('H2O')``, distorted (bond lengths 1.00 and
  0.94 A, angle 112 deg), in a 15 A periodic box, relaxed with FIRE to ``fmax`` 0.01 eV/A; the
  H-O-H angle and the two O-H lengths.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: 1 eV/A^3 in GPa.
EV_PER_A3_TO_GPA = 160.21766208


@dataclass(frozen=True)
class Crystal:
    """A crystal of the equation-of-state scan: ``ase.build.bulk(formula, structure, a=a_ref)``.

    ``free_internal``: whether the structure has free internal coordinates (then positions are
    relaxed at every lattice constant of the scan).
    """

    name: str
    formula: str
    structure: str
    a_ref: float
    free_internal: bool = False


#: Reference lattice constants (A): experimental room-temperature values from standard tables
#: (Kittel; CRC Handbook), rounded. They only centre the scan; nothing is compared to them.
CRYSTALS: tuple[Crystal, ...] = (
    Crystal("Cu", "Cu", "fcc", 3.615),
    Crystal("Ag", "Ag", "fcc", 4.086),
    Crystal("Au", "Au", "fcc", 4.078),
    Crystal("Al", "Al", "fcc", 4.05),
    Crystal("Ni", "Ni", "fcc", 3.524),
    Crystal("Pd", "Pd", "fcc", 3.89),
    Crystal("Pt", "Pt", "fcc", 3.924),
    Crystal("Fe", "Fe", "bcc", 2.867),
    Crystal("W", "W", "bcc", 3.165),
    Crystal("Mo", "Mo", "bcc", 3.147),
    Crystal("Na", "Na", "bcc", 4.291),
    Crystal("Li", "Li", "bcc", 3.51),
    Crystal("C", "C", "diamond", 3.567),
    Crystal("Si", "Si", "diamond", 5.431),
    Crystal("Ge", "Ge", "diamond", 5.658),
    Crystal("NaCl", "NaCl", "rocksalt", 5.64),
    Crystal("MgO", "MgO", "rocksalt", 4.212),
    Crystal("LiF", "LiF", "rocksalt", 4.03),
    Crystal("GaAs", "GaAs", "zincblende", 5.653),
    Crystal("ZnS", "ZnS", "zincblende", 5.41),
    Crystal("CaF2", "CaF2", "fluorite", 5.463),
    Crystal("CsCl", "CsCl", "cesiumchloride", 4.123),
)

#: Crystals whose Gamma phonons are computed (at each calculator's own fitted lattice constant).
PHONON_CRYSTALS: tuple[str, ...] = ("Si", "NaCl")


def build(crystal: Crystal, a: float | None = None):
    """The primitive cell of ``crystal`` at lattice constant ``a`` (default its reference)."""
    from ase.build import bulk

    return bulk(crystal.formula, crystal.structure, a=crystal.a_ref if a is None else a)


# --------------------------------------------------------------------------- equation of state


def birch_murnaghan_energy(volume, e0: float, b0: float, bp: float, v0: float):
    """Third-order Birch-Murnaghan E(V) (``b0`` in eV/A^3), the form ASE fits."""
    from ase.eos import birchmurnaghan

    return birchmurnaghan(np.asarray(volume, dtype=np.float64), e0, b0, bp, v0)


#: B0' outside this range, or a fit rms above this fraction of the scan's energy range, is
#: recorded as ``fit_warning`` (the values are kept: the warning says the form does not fit).
BP_PLAUSIBLE = (1.0, 10.0)
RMS_WARN_FRACTION = 0.01


def fit_birch_murnaghan(volumes, energies) -> dict:
    """Fit E(V) unless the scan has no minimum inside it.

    Returns ``{"status": "ok", "v0", "e0", "b0_GPa", "bp", "rms_meV"}`` (rms: residual of the fit
    per structure; ``fit_warning`` too when B0' or the rms is implausible, see
    :data:`BP_PLAUSIBLE`), or ``{"status": "no minimum", "reason"}`` when the lowest energy lies
    at the smallest or largest volume, or ``{"status": "fit failed", "reason"}`` when the fit
    does not converge, puts V0 outside the scanned volumes or gives B0 <= 0.
    """
    import warnings

    from ase.eos import EquationOfState

    v = np.asarray(volumes, dtype=np.float64)
    e = np.asarray(energies, dtype=np.float64)
    if v.shape != e.shape or v.ndim != 1 or len(v) < 5:
        raise ValueError(f"need at least 5 (volume, energy) pairs, got {v.shape} and {e.shape}")
    if not (np.isfinite(v).all() and np.isfinite(e).all()):
        return {"status": "fit failed", "reason": "non-finite volume or energy in the scan"}
    order = np.argsort(v)
    v, e = v[order], e[order]
    i = int(np.argmin(e))
    if i == 0 or i == len(e) - 1:
        end = "smallest" if i == 0 else "largest"
        return {
            "status": "no minimum",
            "reason": f"lowest energy at the {end} volume of the scan ({v[i]:.3f} A^3): "
            "the minimum lies outside the scan; not fitted",
        }
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the checks below decide, not ASE's warning
            eos = EquationOfState(v, e, eos="birchmurnaghan")
            v0, e0, b0 = eos.fit(warn=False)
    except (RuntimeError, ValueError, np.linalg.LinAlgError) as err:
        return {"status": "fit failed", "reason": f"{type(err).__name__}: {err}"}
    bp = float(eos.eos_parameters[2])
    if not (v[0] <= v0 <= v[-1]):
        return {"status": "fit failed", "reason": f"fitted V0 {v0:.3f} A^3 outside the scan"}
    if not b0 > 0:
        return {"status": "fit failed", "reason": f"fitted B0 {b0 * EV_PER_A3_TO_GPA:.3g} GPa"}
    resid = e - birch_murnaghan_energy(v, *eos.eos_parameters)
    rms = float(np.sqrt(np.mean(resid**2)))
    out = {
        "status": "ok",
        "v0": float(v0),
        "e0": float(e0),
        "b0_GPa": float(b0 * EV_PER_A3_TO_GPA),
        "bp": bp,
        "rms_meV": 1e3 * rms,
    }
    warn = []
    if not BP_PLAUSIBLE[0] <= bp <= BP_PLAUSIBLE[1]:
        warn.append(f"B' = {bp:.2f} outside {BP_PLAUSIBLE[0]:g}-{BP_PLAUSIBLE[1]:g}")
    if rms > RMS_WARN_FRACTION * (e.max() - e.min()):
        warn.append(
            f"fit rms {1e3 * rms:.2f} meV > {100 * RMS_WARN_FRACTION:g} % of the scan's range"
        )
    if warn:
        out["fit_warning"] = "; ".join(warn) + ": E(V) not of Birch-Murnaghan shape over the scan"
    return out


def _relax_positions(atoms, fmax: float, steps: int) -> tuple[bool, int]:
    from ase.optimize import FIRE

    opt = FIRE(atoms, logfile=None)
    converged = bool(opt.run(fmax=fmax, steps=steps))
    return converged, int(opt.nsteps)


def eos_scan(
    crystal: Crystal,
    calc,
    *,
    n_points: int = 11,
    span: float = 0.06,
    relax_fmax: float = 0.01,
    relax_steps: int = 300,
) -> dict:
    """Energies of ``crystal`` at ``n_points`` lattice constants ``a_ref (1 + s)``, ``s`` in
    ``[-span, span]``, and the Birch-Murnaghan fit (:func:`fit_birch_murnaghan`) with
    ``a0 = a_ref (V0 / V_ref)^(1/3)``."""
    scales = np.linspace(-span, span, n_points)
    ref = build(crystal)
    v_ref = ref.get_volume()
    points = []
    relax_note = (
        "relaxed (FIRE, fixed cell)" if crystal.free_internal else "none (fixed by symmetry)"
    )
    for s in scales:
        a = crystal.a_ref * (1.0 + s)
        atoms = build(crystal, a)
        atoms.calc = calc
        point = {"a": float(a), "volume": float(atoms.get_volume())}
        if crystal.free_internal:
            point["relax_converged"], point["relax_steps"] = _relax_positions(
                atoms, relax_fmax, relax_steps
            )
        point["energy"] = float(atoms.get_potential_energy())
        point["max_force"] = float(np.abs(atoms.get_forces()).max())
        points.append(point)
    fit = fit_birch_murnaghan([p["volume"] for p in points], [p["energy"] for p in points])
    if fit["status"] == "ok":
        fit["a0"] = float(crystal.a_ref * (fit["v0"] / v_ref) ** (1.0 / 3.0))
    return {
        "name": crystal.name,
        "formula": crystal.formula,
        "structure": crystal.structure,
        "atoms_in_cell": len(ref),
        "a_ref": crystal.a_ref,
        "span": span,
        "positions": relax_note,
        "points": points,
        "max_residual_force": max(p["max_force"] for p in points),
        **fit,
    }


# ------------------------------------------------------------------------------ Gamma phonons


def force_constants_gamma(atoms, calc, delta: float = 0.01) -> np.ndarray:
    """The 3N x 3N q = 0 force-constant matrix (eV/A^2) by central differences of the forces.

    ``Phi[3i+a, 3j+b] = -dF_{j,b} / du_{i,a}``; moving atom i of the cell moves all its periodic
    images with it. Symmetrised (``(Phi + Phi^T) / 2``)."""
    base = atoms.copy()
    n = len(base)
    phi = np.zeros((3 * n, 3 * n))
    for i in range(n):
        for a in range(3):
            forces = []
            for sign in (1.0, -1.0):
                disp = base.copy()
                disp.calc = calc
                pos = disp.get_positions()
                pos[i, a] += sign * delta
                disp.set_positions(pos)
                forces.append(np.asarray(disp.get_forces(), dtype=np.float64).reshape(-1))
            phi[3 * i + a] = -(forces[0] - forces[1]) / (2.0 * delta)
    return 0.5 * (phi + phi.T)


def frequencies_from_force_constants(phi: np.ndarray, masses) -> np.ndarray:
    """Sorted frequencies (THz) of the mass-weighted force constants; negative = imaginary."""
    from ase import units

    m = np.repeat(np.asarray(masses, dtype=np.float64), 3)
    dyn = phi / np.sqrt(np.outer(m, m))  # eV / (A^2 amu)
    w2 = np.linalg.eigvalsh(dyn)
    # sqrt(eV / (A^2 amu)) in rad/s, then cycles per second in THz
    to_thz = math.sqrt(units._e / units._amu) * 1e10 / (2.0 * math.pi) / 1e12
    return np.sort(np.sign(w2) * np.sqrt(np.abs(w2)) * to_thz)


def gamma_frequencies(atoms, calc, delta: float = 0.01) -> np.ndarray:
    """Sorted Gamma-point frequencies (THz) of the cell ``atoms`` (3N values, 3 acoustic ~ 0)."""
    phi = force_constants_gamma(atoms, calc, delta)
    return frequencies_from_force_constants(phi, atoms.get_masses())


def phonon_entry(crystal: Crystal, calc, eos: dict | None, delta: float = 0.01) -> dict:
    """Gamma phonons of ``crystal`` at the calculator's own fitted lattice constant (or the
    reference one, said so, when its scan has no fitted minimum)."""
    if eos is not None and eos.get("status") == "ok":
        a, where = eos["a0"], "own fitted a0"
    else:
        a, where = crystal.a_ref, "reference a (no fitted minimum of this calculator)"
    atoms = build(crystal, a)
    freqs = gamma_frequencies(atoms, calc, delta)
    return {
        "name": crystal.name,
        "a": float(a),
        "a_from": where,
        "delta": delta,
        "frequencies_THz": [float(f) for f in freqs],
    }


# ---------------------------------------------------------------------------------- water


def distorted_water(box: float = 15.0):
    """``molecule('H2O')`` reshaped to O-H 1.00 and 0.94 A with an angle of 112 deg, centred in a
    periodic cubic box of side ``box`` (A)."""
    from ase.build import molecule

    atoms = molecule("H2O")
    sym = atoms.get_chemical_symbols()
    o = sym.index("O")
    h1, h2 = (i for i, s in enumerate(sym) if s == "H")
    half = math.radians(112.0) / 2.0
    pos = atoms.get_positions()
    pos[h1] = pos[o] + 1.00 * np.array([math.sin(half), 0.0, math.cos(half)])
    pos[h2] = pos[o] + 0.94 * np.array([-math.sin(half), 0.0, math.cos(half)])
    atoms.set_positions(pos)
    atoms.set_cell([box, box, box])
    atoms.set_pbc(True)
    atoms.center()
    return atoms


def water_geometry(atoms) -> dict:
    """H-O-H angle (deg) and the two O-H lengths (A) of a single water molecule."""
    sym = atoms.get_chemical_symbols()
    if sorted(sym) != ["H", "H", "O"]:
        raise ValueError(f"not a water molecule: {atoms.get_chemical_formula()}")
    o = sym.index("O")
    h1, h2 = (i for i, s in enumerate(sym) if s == "H")
    return {
        "angle_deg": float(atoms.get_angle(h1, o, h2, mic=True)),
        "oh_A": [
            float(atoms.get_distance(o, h1, mic=True)),
            float(atoms.get_distance(o, h2, mic=True)),
        ],
    }


def relax_water(calc, fmax: float = 0.01, steps: int = 2000) -> dict:
    """Relax :func:`distorted_water` with FIRE; the geometry before and after."""
    from ase.optimize import FIRE

    atoms = distorted_water()
    start = water_geometry(atoms)
    atoms.calc = calc
    opt = FIRE(atoms, logfile=None)
    converged = bool(opt.run(fmax=fmax, steps=steps))
    out = water_geometry(atoms)
    return {
        "start": start,
        **out,
        "oh_mean_A": float(np.mean(out["oh_A"])),
        "fmax": fmax,
        "converged": converged,
        "steps": int(opt.nsteps),
        "energy": float(atoms.get_potential_energy()),
        "final_max_force": float(np.linalg.norm(atoms.get_forces(), axis=1).max()),
    }
