"""Labelling with SevenNet-0 and writing the MPTrj JSON layout (teacher environment only).

Shared by ``make_sample_data.py`` and ``make_distill_dataset.py``. Runs in the separate teacher
environment (torch CPU + sevenn + pymatgen, see ``scripts/requirements-teacher.txt``); it never
imports JAX or the rest of facet.

Teacher: SevenNet-0 (11Jul2024 checkpoint), Park et al., "Scalable parallel algorithm for graph
neural network interatomic potentials in molecular dynamics simulations", J. Chem. Theory
Comput. 20, 4857 (2024); trained on the *uncorrected* MPTrj energies (Deng et al., Nat. Mach.
Intell. 5, 1031 (2023)).

Units and signs written (MPTrj convention, see docs/REFERENCE.md sec. 3):

* ``uncorrected_total_energy``: the teacher's total energy, eV;
* ``corrected_total_energy``: MP2020-corrected energy, eV (Wang et al., Sci. Rep. 11, 15496
  (2021), via ``MaterialsProject2020Compatibility``), or null where it does not apply;
* ``force``: N x 3, eV/A;
* ``stress``: 3 x 3, kBar, VASP sign (positive = compressive):
  ``stress_kbar = -stress_ase * 1602.1766208`` with ``stress_ase`` in eV/A^3 (tensile positive).

Stored precision: the teacher computes in float32. Forces are rounded to 1e-6 eV/A and the kBar
stress to 1e-5 kBar (both far below float32 resolution of the teacher's outputs); energies are
stored as the float64 value of the teacher's float32 result.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.metadata
import json
import os
import platform

# One thread, set before torch is imported: bit-reproducible labels and a fair share of the CPU.
os.environ["OMP_NUM_THREADS"] = "1"
os.environ["MKL_NUM_THREADS"] = "1"

import numpy as np  # noqa: E402
from ase import Atoms  # noqa: E402
from ase.calculators.singlepoint import SinglePointCalculator  # noqa: E402

EV_PER_A3_TO_KBAR = 1602.1766208  # 1 eV/A^3 = 160.21766208 GPa = 1602.1766208 kBar
FORCE_DECIMALS = 6
STRESS_KBAR_DECIMALS = 5
TEACHER_NAME = "7net-0"

# calc_id in the frame key "<task_id>-<calc_id>-<ionic_step>" names the kind of trajectory.
CALC_KINDS = {
    0: "static: energy-volume scan, random strains, rattles (independent single points)",
    1: "FIRE relaxation of positions and cell (FrechetCellFilter) from a strained+rattled start",
    2: "Langevin MD at 300 K",
    3: "Langevin MD at 800 K",
    4: "Langevin MD at 1500 K",
}
MD_CALC_ID = {300.0: 2, 800.0: 3, 1500.0: 4}


def load_teacher():
    """SevenNet-0 on one CPU thread (deterministic)."""
    import torch
    from sevenn.calculator import SevenNetCalculator

    torch.set_num_threads(1)
    if torch.get_num_interop_threads() != 1:  # torch refuses a second call once it is set
        torch.set_num_interop_threads(1)
    return SevenNetCalculator(TEACHER_NAME, device="cpu")


def teacher_checkpoint_path() -> str:
    from sevenn.util import pretrained_name_to_path

    return pretrained_name_to_path(TEACHER_NAME)


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def environment_versions() -> dict[str, str]:
    """Versions of everything that can change the labels or the bytes written."""
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for pkg in ("torch", "sevenn", "e3nn", "ase", "pymatgen", "pymatgen-core", "numpy", "scipy",
                "spglib"):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    out["teacher_checkpoint"] = os.path.basename(teacher_checkpoint_path())
    out["teacher_checkpoint_sha256"] = sha256_file(teacher_checkpoint_path())
    out["OMP_NUM_THREADS"] = os.environ.get("OMP_NUM_THREADS", "")
    return out


class TeacherError(RuntimeError):
    """The teacher returned a non-finite label."""


def label(atoms: Atoms) -> tuple[float, np.ndarray, np.ndarray]:
    """Energy (eV), forces (N x 3, eV/A), stress (3 x 3, eV/A^3, ASE sign) of ``atoms.calc``.

    Repeated calls on unchanged atoms reuse the calculator's cached results.
    """
    energy = float(atoms.get_potential_energy())
    forces = np.asarray(atoms.get_forces(), dtype=np.float64)
    stress = np.asarray(atoms.get_stress(voigt=False), dtype=np.float64)
    if not (np.isfinite(energy) and np.isfinite(forces).all() and np.isfinite(stress).all()):
        raise TeacherError("non-finite energy, forces or stress")
    return energy, forces, stress


class MP2020:
    """MaterialsProject2020Compatibility applied as MP's GGA(+U) workflow would have.

    Per frame we build a ``ComputedStructureEntry`` with the teacher's energy and the parameters
    an MP relaxation (``MPRelaxSet``) would carry:

    * ``hubbards``: the MPRelaxSet U value (``LDAUU``, keyed by the most electronegative element,
      O or F) for each element of the frame that has one, e.g. {"Fe": 5.3} for an oxide;
    * ``run_type``: "GGA+U" if any U applies, else "GGA"; ``is_hubbard`` accordingly;
    * ``potcar_symbols``: "PBE <MPRelaxSet POTCAR symbol>" per element (e.g. "PBE Fe_pv"), so
      the POTCAR check passes by construction (there are no POTCARs: this asserts the labels
      are *meant* to be on MP's GGA(+U) scale, which SevenNet-0 learned from MPTrj).

    The corrected energy is ``entry.energy`` after ``process_entry`` (anion, GGA/GGA+U mixing
    corrections; none for elements). If the scheme raises or rejects the entry, the corrected
    energy is None and the reason is returned.
    """

    def __init__(self):
        from pymatgen.entries.compatibility import MaterialsProject2020Compatibility
        from pymatgen.io.vasp.sets import MPRelaxSet

        self.compat = MaterialsProject2020Compatibility()
        self.u_values = MPRelaxSet.CONFIG["INCAR"]["LDAUU"]
        self.potcars = MPRelaxSet.CONFIG["POTCAR"]

    def parameters(self, structure) -> dict:
        comp = structure.composition
        elements = sorted((el for el in comp.elements if comp[el] > 0), key=lambda el: el.X)
        most_electroneg = elements[-1].symbol
        u_table = self.u_values.get(most_electroneg, {})
        hubbards = {el.symbol: float(u_table[el.symbol]) for el in elements
                    if el.symbol in u_table}
        missing = [el.symbol for el in elements if el.symbol not in self.potcars]
        if missing:
            raise KeyError(f"no MPRelaxSet POTCAR for {missing}")
        return {
            "run_type": "GGA+U" if hubbards else "GGA",
            "is_hubbard": bool(hubbards),
            "hubbards": hubbards,
            "potcar_symbols": [f"PBE {self.potcars[el.symbol]}" for el in elements],
        }

    def correct(self, structure, energy: float) -> tuple[float | None, str]:
        """(corrected total energy or None, description of what was applied or why not)."""
        from pymatgen.entries.computed_entries import ComputedStructureEntry

        try:
            params = self.parameters(structure)
            entry = ComputedStructureEntry(structure, energy, parameters=params)
            out = self.compat.process_entry(entry, on_error="raise")
        except Exception as exc:  # noqa: BLE001 - every failure is recorded with its reason
            return None, f"not applicable: {type(exc).__name__}: {exc}"[:300]
        if out is None:
            return None, "not applicable: rejected by MaterialsProject2020Compatibility"
        u = ",".join(f"{k}={v}" for k, v in params["hubbards"].items())
        return float(out.energy), params["run_type"] + (f" (U: {u})" if u else "")


def to_structure(atoms: Atoms):
    """A plain pymatgen Structure (no site properties) from ASE atoms, Cartesian positions."""
    from pymatgen.core import Lattice, Structure

    return Structure(Lattice(np.asarray(atoms.cell[:], dtype=np.float64)),
                     atoms.get_chemical_symbols(), atoms.get_positions(),
                     coords_are_cartesian=True)


def mptrj_frame(atoms: Atoms, energy: float, forces: np.ndarray, stress_ase: np.ndarray,
                mp_id: str, mp2020: MP2020) -> tuple[dict, str]:
    """One frame in the MPTrj layout and the MP2020 status string."""
    structure = to_structure(atoms)
    corrected, status = mp2020.correct(structure, energy)
    n = len(atoms)
    frame = {
        "structure": structure.as_dict(),
        "uncorrected_total_energy": energy,
        "corrected_total_energy": corrected,
        "energy_per_atom": None if corrected is None else corrected / n,
        "ef_per_atom": None,
        "e_per_atom_relaxed": None,
        "ef_per_atom_relaxed": None,
        "force": np.round(forces, FORCE_DECIMALS).tolist(),
        "stress": np.round(-stress_ase * EV_PER_A3_TO_KBAR, STRESS_KBAR_DECIMALS).tolist(),
        "magmom": None,
        "bandgap": None,
        "mp_id": mp_id,
    }
    return frame, status


COMPACT_FORCE_DECIMALS = 4  # eV/A: 0.1 meV/A, far below the student's error
COMPACT_STRESS_KBAR_DECIMALS = 3  # kBar: 6e-7 eV/A^3
COMPACT_FRAC_DECIMALS = 8  # fractional coordinates: < 1e-7 A in a 10 A cell


def compact_structure_dict(atoms: Atoms) -> dict:
    """The pymatgen ``Structure.as_dict()`` layout with only what ``Structure.from_dict`` and
    facet's reader need: the lattice (matrix, pbc) and, per site, species and fractional ``abc``
    (no Cartesian ``xyz`` copy, no labels or empty properties), so shards stay small."""
    cell = np.asarray(atoms.cell[:], dtype=np.float64)
    frac = np.linalg.solve(cell.T, atoms.get_positions().T).T
    frac = np.round(frac, COMPACT_FRAC_DECIMALS)
    return {
        "@module": "pymatgen.core.structure", "@class": "Structure", "charge": 0,
        "lattice": {"matrix": cell.tolist(), "pbc": [bool(p) for p in atoms.pbc]},
        "sites": [{"species": [{"element": s, "occu": 1}], "abc": f.tolist()}
                  for s, f in zip(atoms.get_chemical_symbols(), frac, strict=True)],
    }


def compact_frame(atoms: Atoms, energy: float, forces: np.ndarray, stress_ase: np.ndarray,
                  mp_id: str, mp2020: MP2020) -> tuple[dict, str]:
    """One MPTrj-layout frame as :func:`mptrj_frame` writes it (and the MP2020 status), with the
    compact structure dict and labels rounded to :data:`COMPACT_FORCE_DECIMALS` /
    :data:`COMPACT_STRESS_KBAR_DECIMALS` (the fields that are always null in a teacher label are
    left out)."""
    corrected, status = mp2020.correct(to_structure(atoms), energy)
    n = len(atoms)
    return {
        "structure": compact_structure_dict(atoms),
        "uncorrected_total_energy": energy,
        "corrected_total_energy": corrected,
        "energy_per_atom": None if corrected is None else corrected / n,
        "force": np.round(forces, COMPACT_FORCE_DECIMALS).tolist(),
        "stress": np.round(-stress_ase * EV_PER_A3_TO_KBAR, COMPACT_STRESS_KBAR_DECIMALS).tolist(),
        "mp_id": mp_id,
    }, status


def extxyz_atoms(atoms: Atoms, frame: dict, frame_id: str, config_type: str) -> Atoms:
    """The same frame as ASE atoms with a single-point calculator (ASE units and signs)."""
    out = Atoms(atoms.numbers, positions=atoms.get_positions(), cell=atoms.cell[:], pbc=True)
    stress_ase = -np.asarray(frame["stress"]) / EV_PER_A3_TO_KBAR
    out.calc = SinglePointCalculator(out, energy=frame["uncorrected_total_energy"],
                                     forces=np.asarray(frame["force"]), stress=stress_ase)
    out.info.update({"mp_id": frame["mp_id"], "frame_id": frame_id, "config_type": config_type})
    if frame["corrected_total_energy"] is not None:
        out.info["corrected_total_energy"] = frame["corrected_total_energy"]
    return out


def dump_json_bytes(data) -> bytes:
    """Deterministic compact JSON (insertion order kept, no timestamps)."""
    return json.dumps(data, separators=(",", ":"), allow_nan=False).encode()


def write_json(path: str, data, compress: bool) -> None:
    raw = dump_json_bytes(data)
    if compress:
        # mtime=0 and no file name in the header: same bytes on every run.
        with open(path, "wb") as f, gzip.GzipFile(filename="", mode="wb", fileobj=f,
                                                  compresslevel=9, mtime=0) as gz:
            gz.write(raw)
    else:
        with open(path, "wb") as f:
            f.write(raw)


# A pair of atoms closer than this (Angstrom; or the fraction of the sum of their covalent
# radii, whichever is larger) is a collapse, not chemistry: the teacher's high-temperature MD
# can push atoms together (two F atoms 0.31 A apart in the first labelling of data/distill2),
# and labels there teach the student nothing it will meet. facet's reader refuses frames
# below 0.5 A (facet.data.frames.check_min_distance).
COLLAPSE_FLOOR = 0.5
COLLAPSE_FRACTION = 0.5


def collapsed_pair(atoms: Atoms) -> str | None:
    """The closest pair (periodic images included) closer than
    ``max(COLLAPSE_FLOOR, COLLAPSE_FRACTION * (r_i + r_j))`` with ASE's covalent radii, as
    ``"atoms i and j are d A apart (< limit A)"``; ``None`` when there is none."""
    from ase.data import covalent_radii
    from ase.neighborlist import neighbor_list

    if len(atoms) < 2 and not atoms.pbc.any():
        return None
    radii = covalent_radii[atoms.numbers]
    cutoff = max(COLLAPSE_FLOOR, COLLAPSE_FRACTION * 2 * float(radii.max()))
    i, j, d = neighbor_list("ijd", atoms, cutoff, self_interaction=False)
    if len(i) == 0:
        return None
    limit = np.maximum(COLLAPSE_FLOOR, COLLAPSE_FRACTION * (radii[i] + radii[j]))
    bad = np.flatnonzero(d < limit)
    if len(bad) == 0:
        return None
    k = bad[np.argmin(d[bad] / limit[bad])]
    a, b = sorted((int(i[k]), int(j[k])))
    return f"atoms {a} and {b} are {d[k]:.3f} A apart (< {limit[k]:.3f} A)"
