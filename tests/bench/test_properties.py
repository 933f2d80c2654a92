"""The property code of ``facet bench properties`` on calculators whose answers are known.

* Birch-Murnaghan fit: a synthetic E(V) with known E0, V0, B0, B0' is recovered exactly; a scan
  whose lowest energy lies at an end is reported as "no minimum" and not fitted (synthetic and a
  real EMT scan centred far from the minimum).
* Equation of state of EMT Cu and Al: a0 and B0 of the scan + fit agree with the minimum of the
  EMT energy found by a scalar minimiser and B = V d2E/dV2 by central differences.
* Gamma phonons: an anisotropic two-atom spring chain with frequencies
  nu_a = sqrt(2 k_a (1/m1 + 1/m2)) / (2 pi); and the 4-atom conventional fcc cell of EMT Cu
  (Gamma plus the folded X modes) against phonopy.
* Water: the angle and O-H lengths of a molecule built with known geometry (also across the
  periodic boundary); relaxing with an analytic bond + angle model ends at its minimum.
* The comparison: a Facet scan without a minimum counts as a failure in the medians, a crystal
  without a teacher fit is left out and named, the targets' met/not met flags; the report and
  plot render.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.emt import EMT

from facet.bench import properties_compare as C
from facet.bench import properties_render as W
from facet.bench import properties_report as R
from facet.bench import property_measures as P

# CODATA 2018, written out so that the unit conversion is checked independently of ASE.
EV = 1.602176634e-19
AMU = 1.66053906660e-27


def thz(k_ev_a2: float, mass_amu: float) -> float:
    """Frequency (THz) of sqrt(k / m), k in eV/A^2, m in amu."""
    return math.sqrt(k_ev_a2 * EV / 1e-20 / (mass_amu * AMU)) / (2 * math.pi) / 1e12


# ---------------------------------------------------------------------------- Birch-Murnaghan


def test_birch_murnaghan_fit_recovers_known_parameters():
    e0, b0_gpa, bp, v0 = -3.7, 123.0, 4.6, 17.3
    b0 = b0_gpa / P.EV_PER_A3_TO_GPA
    v = v0 * np.linspace(0.94, 1.06, 11) ** 3
    e = P.birch_murnaghan_energy(v, e0, b0, bp, v0)
    fit = P.fit_birch_murnaghan(v[::-1], e[::-1])  # order of the scan does not matter
    assert fit["status"] == "ok"
    assert fit["v0"] == pytest.approx(v0, rel=1e-8)
    assert fit["e0"] == pytest.approx(e0, abs=1e-9)
    assert fit["b0_GPa"] == pytest.approx(b0_gpa, rel=1e-6)
    assert fit["bp"] == pytest.approx(bp, rel=1e-5)
    assert fit["rms_meV"] < 1e-6
    assert "fit_warning" not in fit
    # an implausible B0' is kept but flagged
    e_soft = P.birch_murnaghan_energy(v, e0, b0, 0.2, v0)
    soft = P.fit_birch_murnaghan(v, e_soft)
    assert soft["bp"] == pytest.approx(0.2, abs=1e-4)
    assert "B' = 0.20 outside 1-10" in soft["fit_warning"]


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_scan_without_minimum_is_reported_not_fitted(sign):
    v = np.linspace(10.0, 14.0, 11)
    e = sign * 0.3 * (v - 12.0) + 0.01 * (v - 12.0) ** 2  # monotonic over the scan
    fit = P.fit_birch_murnaghan(v, e)
    assert fit["status"] == "no minimum"
    assert ("smallest" if sign > 0 else "largest") in fit["reason"]
    assert "v0" not in fit and "b0_GPa" not in fit


def test_non_finite_energy_is_a_failed_fit():
    v = np.linspace(10.0, 14.0, 7)
    e = (v - 12.0) ** 2
    e[3] = np.nan
    assert P.fit_birch_murnaghan(v, e)["status"] == "fit failed"


def test_emt_scan_far_from_the_minimum_has_no_minimum():
    row = P.eos_scan(P.Crystal("Cu", "Cu", "fcc", 3.1), EMT())  # EMT a0 is 3.59 A
    assert row["status"] == "no minimum"
    assert "largest" in row["reason"]
    assert "a0" not in row
    assert len(row["points"]) == 11


def _emt_reference(symbol: str, a_guess: float) -> tuple[float, float]:
    """a0 (A) minimising the EMT energy of the fcc primitive cell, and B0 = V d2E/dV2 (GPa)."""
    from ase.build import bulk
    from scipy.optimize import minimize_scalar

    def energy_a(a):
        atoms = bulk(symbol, "fcc", a=a)
        atoms.calc = EMT()
        return atoms.get_potential_energy()

    res = minimize_scalar(
        energy_a, bounds=(0.9 * a_guess, 1.1 * a_guess), method="bounded",
        options={"xatol": 1e-9},
    )  # fmt: skip
    a0 = float(res.x)
    v0 = a0**3 / 4.0  # fcc primitive cell

    def energy_v(v):
        return energy_a((4.0 * v) ** (1.0 / 3.0))

    h = 1e-3 * v0
    d2 = (energy_v(v0 + h) - 2 * energy_v(v0) + energy_v(v0 - h)) / h**2
    return a0, v0 * d2 * P.EV_PER_A3_TO_GPA


@pytest.mark.parametrize(
    "symbol,a_ref,span,tol_b",
    [("Cu", 3.615, 0.02, 0.005), ("Al", 4.05, 0.02, 0.01), ("Cu", 3.615, 0.06, 0.015)],
)
def test_emt_lattice_constant_and_bulk_modulus(symbol, a_ref, span, tol_b):
    a0, b0 = _emt_reference(symbol, a_ref)
    row = P.eos_scan(P.Crystal(symbol, symbol, "fcc", a_ref), EMT(), span=span)
    assert row["status"] == "ok"
    assert row["max_residual_force"] < 1e-10  # cubic: no force at any lattice constant
    # EMT's E(V) is not exactly Birch-Murnaghan: the fitted minimum and curvature differ from
    # the local ones a little, more for a wide scan (measured: +-2 %: a0 1e-6-7e-6, B0 0.04 %
    # (Cu) and 0.2 % (Al); +-6 %: Cu a0 6e-5, B0 1.0 %; Al +-6 % B0 11 %, not tested).
    assert row["a0"] == pytest.approx(a0, rel=1e-4)
    assert row["b0_GPa"] == pytest.approx(b0, rel=tol_b)
    assert 1.0 < row["bp"] < 10.0


# ------------------------------------------------------------------------------ Gamma phonons


class SpringChain(Calculator):
    """Two atoms per cell on a chain along x, each bonded to its two neighbours by an
    anisotropic vector spring E = 1/2 sum_a k_a (d_a - d0_a)^2 (d: bond vector)."""

    implemented_properties = ["energy", "forces"]

    def __init__(self, k, **kw):
        super().__init__(**kw)
        self.k = np.asarray(k, dtype=np.float64)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        pos = self.atoms.get_positions()
        length = self.atoms.cell[0, 0]
        d0 = np.array([length / 2, 0.0, 0.0])
        energy, forces = 0.0, np.zeros_like(pos)
        for i, j, shift in ((0, 1, 0.0), (1, 0, length)):  # 0->1 in the cell, 1->0 next cell
            d = pos[j] + np.array([shift, 0.0, 0.0]) - pos[i] - d0
            energy += 0.5 * float(np.sum(self.k * d**2))
            forces[j] -= self.k * d
            forces[i] += self.k * d
        self.results = {"energy": energy, "forces": forces}


def test_gamma_frequencies_of_a_spring_chain():
    k = np.array([3.0, 1.2, 0.4])  # eV/A^2
    m1, m2 = 12.0, 35.0
    atoms = Atoms("CCl", positions=[[0, 0, 0], [1.5, 0, 0]], cell=[3.0, 10.0, 10.0], pbc=True)
    atoms.set_masses([m1, m2])
    freqs = P.gamma_frequencies(atoms, SpringChain(k))
    mu = 1.0 / (1.0 / m1 + 1.0 / m2)
    expected = sorted([0.0] * 3 + [thz(2 * ka, mu) for ka in k])
    np.testing.assert_allclose(freqs, expected, atol=1e-6)
    assert C.optical(list(freqs)) == pytest.approx(sorted(thz(2 * ka, mu) for ka in k), abs=1e-6)


def test_gamma_frequencies_match_phonopy_for_conventional_fcc_emt():
    phonopy = pytest.importorskip("phonopy")
    from ase.build import bulk
    from phonopy.structure.atoms import PhonopyAtoms

    atoms = bulk("Cu", "fcc", a=3.59, cubic=True)  # Gamma + three folded X points
    ours = P.gamma_frequencies(atoms, EMT(), delta=0.01)
    cell = PhonopyAtoms(
        symbols=atoms.get_chemical_symbols(), cell=atoms.cell[:],
        scaled_positions=atoms.get_scaled_positions(), masses=atoms.get_masses(),
    )  # fmt: skip
    ph = phonopy.Phonopy(cell, supercell_matrix=np.eye(3, dtype=int), primitive_matrix="P")
    ph.generate_displacements(distance=0.01, is_plusminus=True)
    forces = []
    for sc in ph.supercells_with_displacements:
        disp = Atoms(sc.symbols, cell=sc.cell, scaled_positions=sc.scaled_positions, pbc=True)
        disp.calc = EMT()
        forces.append(disp.get_forces())
    ph.forces = np.array(forces)
    ph.produce_force_constants()
    ph.run_qpoints([[0, 0, 0]])
    ref = np.sort(ph.get_qpoints_dict()["frequencies"][0])
    assert ours[-1] > 5.0  # real optical (folded X) modes, not only zeros
    np.testing.assert_allclose(ours, ref, atol=2e-3)


# ---------------------------------------------------------------------------------- water


def _water(angle_deg, r1, r2, box=10.0, origin=(5.0, 5.0, 5.0)):
    half = math.radians(angle_deg) / 2
    o = np.array(origin)
    h1 = o + r1 * np.array([math.sin(half), 0.0, math.cos(half)])
    h2 = o + r2 * np.array([-math.sin(half), 0.0, math.cos(half)])
    return Atoms("HOH", positions=[h1, o, h2], cell=[box] * 3, pbc=True)


def test_water_geometry_measures_angle_and_lengths():
    g = P.water_geometry(_water(97.3, 0.9, 1.1))
    assert g["angle_deg"] == pytest.approx(97.3, abs=1e-9)
    assert sorted(g["oh_A"]) == pytest.approx([0.9, 1.1], abs=1e-12)
    wrapped = _water(120.0, 0.95, 0.97, origin=(0.1, 0.1, 9.8))
    wrapped.wrap()  # the H atoms land on the other side of the box
    g = P.water_geometry(wrapped)
    assert g["angle_deg"] == pytest.approx(120.0, abs=1e-9)
    assert sorted(g["oh_A"]) == pytest.approx([0.95, 0.97], abs=1e-12)
    start = P.water_geometry(P.distorted_water())
    assert start["angle_deg"] == pytest.approx(112.0, abs=1e-9)
    assert start["oh_A"] == pytest.approx([1.00, 0.94], abs=1e-12)
    with pytest.raises(ValueError, match="not a water molecule"):
        P.water_geometry(Atoms("OHHH", positions=np.eye(4, 3) * 3))


class WaterModel(Calculator):
    """E = 1/2 kb sum (r - r0)^2 + 1/2 ka (theta - theta0)^2; forces by central differences."""

    implemented_properties = ["energy", "forces"]
    r0, theta0, kb, ka = 0.9572, math.radians(104.52), 40.0, 4.0

    def _energy(self, pos, o, h1, h2):
        d1, d2 = pos[h1] - pos[o], pos[h2] - pos[o]
        r1, r2 = np.linalg.norm(d1), np.linalg.norm(d2)
        theta = math.acos(np.clip(d1 @ d2 / (r1 * r2), -1.0, 1.0))
        return (
            0.5 * self.kb * ((r1 - self.r0) ** 2 + (r2 - self.r0) ** 2)
            + 0.5 * self.ka * (theta - self.theta0) ** 2
        )

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        sym = self.atoms.get_chemical_symbols()
        o = sym.index("O")
        h1, h2 = (i for i, s in enumerate(sym) if s == "H")
        pos = self.atoms.get_positions()
        forces, h = np.zeros_like(pos), 1e-6
        for i in range(len(pos)):
            for a in range(3):
                p, m = pos.copy(), pos.copy()
                p[i, a] += h
                m[i, a] -= h
                forces[i, a] = -(self._energy(p, o, h1, h2) - self._energy(m, o, h1, h2)) / (2 * h)
        self.results = {"energy": self._energy(pos, o, h1, h2), "forces": forces}


def test_relax_water_ends_at_the_model_minimum():
    res = P.relax_water(WaterModel())
    assert res["converged"] and res["final_max_force"] <= 0.01
    assert res["start"]["angle_deg"] == pytest.approx(112.0)
    assert res["angle_deg"] == pytest.approx(104.52, abs=0.2)
    assert res["oh_A"] == pytest.approx([0.9572, 0.9572], abs=1e-3)


# ----------------------------------------------------------------------------- comparison


def _eos(name, a0=None, b0=None, status="ok"):
    row = {"name": name, "structure": "fcc", "status": status}
    if status == "ok":
        row.update(a0=a0, b0_GPa=b0, bp=4.5)
    else:
        row["reason"] = "lowest energy at the largest volume of the scan"
    return row


def _side(eos, freqs, angle, oh):
    return {
        "settings": {"n_points": 11, "span": 0.06},
        "calculator": {"model": "m", "dtype": "float64", "checkpoint": "c"},
        "eos": eos,
        "phonons": [{"name": "Si", "status": "ok", "a": 5.4, "frequencies_THz": freqs}],
        "water": {"status": "ok", "angle_deg": angle, "oh_mean_A": oh, "converged": True},
        "time_s": 1.0,
    }


def test_compare_counts_missing_minimum_as_failure_and_flags_targets(tmp_path):
    teacher = _side(
        [_eos("A", 4.0, 100.0), _eos("B", 3.0, 200.0), _eos("C", 5.0, 50.0),
         _eos("D", status="no minimum")],
        [0.0, 0.0, 0.0, 10.0, 10.0, 12.0], 104.0, 0.97,
    )  # fmt: skip
    facet = _side(
        [_eos("A", 4.02, 95.0), _eos("B", status="no minimum"), _eos("C", 5.0, 50.0),
         _eos("D", 3.0, 1.0)],
        [1e-4, -1e-4, 0.0, 10.2, 10.2, 11.0], 107.0, 0.98,
    )  # fmt: skip
    cmp = C.compare(teacher, facet)
    m = cmp["metrics"]
    # A: 0.5 % / 5 %, B: failure (inf), C: 0 / 0; D has no teacher fit and is left out
    assert m["median_lattice_error_pct"]["value"] == pytest.approx(0.5)
    assert m["median_lattice_error_pct"]["n"] == 3
    assert m["median_lattice_error_pct"]["met"] is True
    assert m["median_bulk_modulus_error_pct"]["value"] == pytest.approx(5.0)
    assert m["median_bulk_modulus_error_pct"]["met"] is True
    assert cmp["crystals_without_teacher_fit"] == ["D"]
    assert cmp["facet_without_minimum"] == ["B"]
    assert m["phonon_max_rel_error_pct"]["value"] == pytest.approx(100 * 1.0 / 12.0)
    assert m["phonon_max_rel_error_pct"]["met"] is False
    assert m["water_angle_diff_deg"]["value"] == pytest.approx(3.0)
    assert m["water_angle_diff_deg"]["met"] is True
    # two failures of three: the median itself is a failure, never a finite number
    facet2 = _side(
        [_eos("A", 4.02, 95.0), _eos("B", status="no minimum"), _eos("C", status="no minimum")],
        [0.0, 0.0, 0.0, 10.0, 10.0, 12.0], 180.0, 0.94,
    )  # fmt: skip
    m2 = C.compare(teacher, facet2)["metrics"]
    assert math.isinf(m2["median_lattice_error_pct"]["value"])
    assert m2["median_lattice_error_pct"]["met"] is False
    assert m2["water_angle_diff_deg"]["met"] is False
    # the report and plot render (failures shown as 'fail', no teacher -> n/a)
    res = {"meta": {"command": "facet bench properties", "teacher_from": "test"},
           "sides": {"teacher": teacher, "facet": facet}, **cmp}  # fmt: skip
    text = W.write_report(res, tmp_path).read_text()
    assert "| median lattice-constant error (n = 3) | 0.5 % | <= 1 % | met |" in text
    assert "| B | fcc | 3.0000 | n/a | fail |" in text
    assert (tmp_path / "properties.png").stat().st_size > 10_000
    alone = C.compare(None, facet)
    assert all(v["met"] is None for v in alone["metrics"].values())


def test_without_teacher_python_the_teacher_side_is_skipped(monkeypatch, tmp_path):
    from argparse import Namespace

    monkeypatch.delenv(R.TEACHER_PYTHON_ENV, raising=False)
    args = Namespace(teacher_results=None, teacher_python=None)
    res, why = R.teacher_side(args, tmp_path)
    assert res is None and why.startswith("skipped:") and R.TEACHER_PYTHON_ENV in why
    args.teacher_python = str(tmp_path / "nope" / "python")
    res, why = R.teacher_side(args, tmp_path)
    assert res is None and "not found" in why


def test_reused_teacher_results_must_match_the_scan(tmp_path):
    from argparse import Namespace

    from facet.bench.common import BenchError, write_json

    old = tmp_path / "results.json"
    teacher = _side([_eos("A", 4.0, 100.0)], [0.0] * 6, 104.0, 0.97)
    write_json(old, {"meta": {"date_utc": "x"}, "sides": {"teacher": teacher}})
    args = Namespace(teacher_results=old, teacher_python=None, points=11, span=0.06)
    res, why = R.teacher_side(args, tmp_path)
    assert res["eos"][0]["a0"] == 4.0 and why.startswith("reused from")
    args.points = 7
    with pytest.raises(BenchError, match="11 points over"):
        R.teacher_side(args, tmp_path)


@pytest.mark.slow
def test_cli_runs_the_facet_side_without_a_teacher(tmp_path, monkeypatch):
    """The whole selection through the command line, shipped model, one crystal, no teacher."""
    import json

    from facet.cli import main

    monkeypatch.delenv(R.TEACHER_PYTHON_ENV, raising=False)
    out = tmp_path / "props"
    rc = main(["bench", "properties", "--crystals", "Si", "--points", "5", "--out", str(out)])
    assert rc == 0
    res = json.loads((out / "results.json").read_text())
    assert res["sides"]["teacher"] is None
    assert res["meta"]["teacher_from"].startswith("skipped: no teacher Python")
    si = res["sides"]["facet"]["eos"][0]
    assert si["name"] == "Si" and len(si["points"]) == 5
    assert all(m["met"] is None for m in res["metrics"].values())
    assert "n/a (no teacher)" in (out / "report.md").read_text()
