"""The compare side of the CHGNet cross-teacher check (facet.studies.chgnet_crosscheck), without
CHGNet: the frames it scores are facet.data's reading of the distillation set, and its teacher row
is zero when the "CHGNet" labels are the teacher's own labels.

The expected values are built here from the raw JSON with the standard library, in the units of
CHGNet's ASE calculator (eV, eV/A, Voigt eV/A^3 with ASE's sign: positive = tensile); MPTrj's
stress is kBar with VASP's sign (positive = compressive), so 1 kBar = -0.1 GPa in ASE's sign.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.lj import LennardJones
from ase.units import GPa

from facet.studies import chgnet_crosscheck as cc

ROOT = Path(__file__).resolve().parents[2]
DISTILL = ROOT / "data" / "distill"

N_FRAMES = 8


@pytest.fixture(scope="module")
def test_split(tmp_path_factory):
    """A data directory holding the test split of the bundled distillation set, and its frames
    as the ``label`` step picks them (standard library only)."""
    d = tmp_path_factory.mktemp("distill")
    splits = json.loads((DISTILL / "splits.json").read_text())
    with gzip.open(DISTILL / cc.DISTILL_FILE, "rt") as fh:
        data = json.load(fh)
    keep = {m: data[m] for m in splits["test"]}
    with gzip.open(d / cc.DISTILL_FILE, "wt") as fh:
        json.dump(keep, fh)
    (d / "splits.json").write_text(json.dumps({"test": splits["test"]}))
    return d, cc._frames(str(d), "test", N_FRAMES)


def _ase_stress_voigt(raw) -> np.ndarray:
    s = -0.1 * GPa * np.asarray(raw["stress"])  # kBar, VASP sign -> eV/A^3, ASE sign
    return s[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]


def _teacher_labels(rows) -> dict:
    """Labels as a perfect CHGNet-like teacher would give them: SevenNet-0's forces and stress,
    MP2020-corrected energy."""
    frames = [
        {
            "material_id": m,
            "frame_id": f,
            "energy": raw["corrected_total_energy"],
            "forces": raw["force"],
            "stress": _ase_stress_voigt(raw).tolist(),
        }
        for m, f, raw in rows
    ]
    return {"meta": {"split": "test"}, "frames": frames}


def test_reference_frames_are_the_raw_file_in_ase_units(test_split):
    d, rows = test_split
    assert len(rows) == N_FRAMES
    got = cc.reference_frames(str(d), [(m, f) for m, f, _ in rows])
    for m, f, raw in rows:
        fr = got[(m, f)]
        s = raw["structure"]
        np.testing.assert_allclose(fr.positions, [site["xyz"] for site in s["sites"]], atol=1e-9)
        np.testing.assert_array_equal(fr.cell, s["lattice"]["matrix"])
        np.testing.assert_array_equal(fr.forces, raw["force"])
        kbar = np.asarray(raw["stress"])
        assert np.abs(kbar).max() > 1.0  # a stressed frame, so a wrong sign cannot pass
        np.testing.assert_allclose(fr.stress, -0.1 * GPa * kbar, rtol=1e-12, atol=0)
        assert fr.energy == raw["uncorrected_total_energy"]
        assert fr.info["corrected_total_energy"] == raw["corrected_total_energy"]


def test_teacher_row_vanishes_against_its_own_labels(test_split):
    d, rows = test_split
    calc = LennardJones(sigma=2.0, epsilon=0.05, rc=5.0)
    res = cc.compare(_teacher_labels(rows), str(d), "lj", calc=calc)
    assert res["frames"] == N_FRAMES
    assert res["frames_with_mp2020_correction"] == N_FRAMES
    for key, value in res["teacher"].items():
        assert value == pytest.approx(0.0, abs=1e-9), key
    # The calculator's row: its errors against the same labels, computed here from the raw file.
    de, df, ds = [], [], []
    for _, _, raw in rows:
        s = raw["structure"]
        atoms = Atoms(
            symbols=[site["species"][0]["element"] for site in s["sites"]],
            positions=[site["xyz"] for site in s["sites"]],
            cell=s["lattice"]["matrix"],
            pbc=True,
        )
        atoms.calc = calc
        corr = raw["corrected_total_energy"] - raw["uncorrected_total_energy"]
        e = atoms.get_potential_energy() + corr
        de.append(1e3 * (e - raw["corrected_total_energy"]) / len(atoms))
        df.append(1e3 * (atoms.get_forces() - np.asarray(raw["force"])).ravel())
        ds.append(1e3 * (atoms.get_stress() - _ase_stress_voigt(raw)))
    assert np.abs(np.concatenate(df)).max() > 1.0  # the calculator disagrees: a non-trivial row
    lj = res["facet"]
    assert lj["energy_mean_diff_mev_atom"] == pytest.approx(np.mean(de), rel=1e-9)
    assert lj["energy_mae_mev_atom"] == pytest.approx(np.mean(np.abs(de)), rel=1e-9)
    assert lj["forces_mae_mev_a"] == pytest.approx(np.mean(np.abs(np.concatenate(df))), rel=1e-9)
    # compare scores the full 3x3 tensor: off-diagonal Voigt entries count twice in 9.
    w = np.array([1, 1, 1, 2, 2, 2]) / 9.0
    assert lj["stress_mae_mev_a3"] == pytest.approx(np.mean([np.abs(x) @ w for x in ds]), rel=1e-9)


def test_missing_labelled_frame_is_named(test_split):
    d, rows = test_split
    with pytest.raises(KeyError, match=r"not in .*mptrj_distill\.json\.gz.*no-such-frame"):
        cc.reference_frames(str(d), [(rows[0][0], rows[0][1]), ("mp-0", "no-such-frame")])
