"""The shipped default model (facet/models/default/): integrity, reference predictions, physics.

The reference predictions in ``reference.json`` were written by
``scripts/train_default_model.py export`` from the same weights; a change of the network code
that changes what the shipped weights compute fails here.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

import facet

MODEL_DIR = Path(facet.__file__).resolve().parent / "models" / "default"
# sha256 of the shipped weights, pinned here so that a silently replaced weight file fails.
PINNED_SHA256 = "ba5f0912f74936d73e36dae075d758de1841359a585dbb7e59fe7545fc4e4443"


def _reference():
    return json.loads((MODEL_DIR / "reference.json").read_text())


def _atoms(entry):
    from ase import Atoms

    return Atoms(
        numbers=entry["numbers"], positions=entry["positions"], cell=entry["cell"], pbc=entry["pbc"]
    )


@pytest.fixture(scope="module")
def calc32():
    return facet.FacetCalculator(model="default")


def test_files_and_checksum():
    from facet.train.checkpoint import verify_checkpoint

    for name in (
        "arrays.npz",
        "config.yaml",
        "meta.json",
        "COMPLETE",
        "README.md",
        "reference.json",
        "metrics.json",
    ):
        assert (MODEL_DIR / name).is_file(), f"{name} missing from the shipped model"
    digest = hashlib.sha256((MODEL_DIR / "arrays.npz").read_bytes()).hexdigest()
    assert digest == PINNED_SHA256
    assert digest == _reference()["arrays_sha256"]
    meta = verify_checkpoint(MODEL_DIR)  # the checkpoint's own checksums
    assert set(meta["trees"]) == {"ema", "rest"}  # inference-only: no optimiser state shipped
    size_mb = sum(p.stat().st_size for p in MODEL_DIR.iterdir()) / 2**20
    assert size_mb < 5.0, f"shipped model is {size_mb:.1f} MB"


def test_shipped_files_name_no_path_of_the_machine_that_exported_them():
    """The exporter records where the weights came from; a path like ``/home/<user>/runs/...``
    means nothing on a user's machine and leaks the exporter's file layout."""
    import re

    absolute = re.compile(r"""(?:^|[\s:'"(=\[])"""
                          r"""(/(?:home|work|tmp|root|Users|scratch)/[^\s'")\]]*)""")
    for name in ("config.yaml", "meta.json", "metrics.json", "README.md"):
        found = absolute.findall((MODEL_DIR / name).read_text())
        assert not found, f"facet/models/default/{name} names absolute paths: {found[:3]}"


def test_export_records_the_run_relative_or_by_its_last_folders(tmp_path, monkeypatch):
    from facet.train.default_model import portable_run_path

    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "a").mkdir(parents=True)
    assert portable_run_path(tmp_path / "runs" / "a") == "runs/a"
    assert portable_run_path("runs/a") == "runs/a"
    outside = "/elsewhere/exp/decay60/checkpoints/step_000070000"
    assert portable_run_path(outside) == "decay60/checkpoints/step_000070000"


def test_loads_by_name_and_counts_parameters(calc32):
    from facet.nn.presets import count_parameters

    metrics = json.loads((MODEL_DIR / "metrics.json").read_text())
    assert count_parameters(calc32.model) == metrics["params"]
    assert 200_000 < metrics["params"] < 300_000  # the facet-s size


@pytest.mark.parametrize("name", ["Si-diamond", "NaCl-rocksalt", "Cu-fcc-vacancy", "H2O-molecule"])
def test_reference_predictions_float32(calc32, name):
    entry = _reference()["structures"][name]
    ref = entry["float32"]
    atoms = _atoms(entry)
    atoms.calc = calc32
    n = len(atoms)
    assert atoms.get_potential_energy() == pytest.approx(ref["energy"], abs=2e-4 * n)
    np.testing.assert_allclose(atoms.get_forces(), ref["forces"], atol=2e-4)
    if "stress" in ref:
        np.testing.assert_allclose(atoms.get_stress(), ref["stress"], atol=2e-6)


def test_reference_predictions_float64(x64):
    calc = facet.FacetCalculator(model="default", dtype="float64")
    for name, entry in _reference()["structures"].items():
        ref = entry["float64"]
        atoms = _atoms(entry)
        atoms.calc = calc
        assert atoms.get_potential_energy() == pytest.approx(ref["energy"], abs=1e-7 * len(atoms))
        np.testing.assert_allclose(atoms.get_forces(), ref["forces"], atol=1e-7, err_msg=name)
        assert ("stress" in ref) == bool(atoms.pbc.all()), name  # every bulk entry has one
        if "stress" in ref:
            np.testing.assert_allclose(atoms.get_stress(), ref["stress"], rtol=0, atol=1e-9,
                                       err_msg=name)
            assert np.abs(ref["stress"]).max() > 1e-4, name  # far from zero: a sign flip fails
        # float32 and float64 evaluations of the same weights agree to float32 round-off
        assert entry["float32"]["energy"] == pytest.approx(ref["energy"], abs=1e-3 * len(atoms))


def test_forces_are_minus_energy_gradient(calc32):
    """Central difference of the float32 energy along the force on one atom (a physics check
    of the shipped weights, not only a regression against stored numbers)."""
    entry = _reference()["structures"]["NaCl-rocksalt"]
    atoms = _atoms(entry)
    atoms.calc = calc32
    f = atoms.get_forces()
    i = int(np.argmax(np.linalg.norm(f, axis=1)))
    d = f[i] / np.linalg.norm(f[i])
    h = 1e-2
    e = []
    for s in (h, -h):
        a = atoms.copy()
        a.positions[i] += s * d
        a.calc = calc32
        e.append(a.get_potential_energy())
    assert -(e[0] - e[1]) / (2 * h) == pytest.approx(float(f[i] @ d), rel=0.05, abs=5e-3)


def test_short_relaxation_finds_a_sensible_lattice(calc32):
    """A strained, rattled Si cell relaxes (FIRE + FrechetCellFilter) to a small residual
    force and a lattice constant near diamond silicon's (5.431 A experiment, about 5.45-5.47 A
    with PBE, the teacher's functional)."""
    from ase.build import bulk

    from facet.dynamics.relax import relax

    atoms = bulk("Si", "diamond", a=5.43 * 1.04)
    atoms.rattle(0.05, seed=1)
    res = relax(atoms, calc32, fmax=0.02, steps=300)
    assert res.converged and res.fmax < 0.02
    assert res.energy < res.initial_energy
    a = (res.atoms.get_volume() * 4) ** (1 / 3)  # 2-atom primitive cell holds 1/4 of the cube
    assert a == pytest.approx(5.45, rel=0.02)
    assert np.abs(res.atoms.get_stress()[:3]).max() < 2e-3  # < 0.3 GPa left


def test_declares_at_least_80_elements_and_refuses_the_others(calc32):
    """Issue 16: the shipped model lists the elements it was trained on (all of its teacher's
    that the distillation set covers) and refuses any other, naming it."""
    from ase import Atoms

    meta = json.loads((MODEL_DIR / "meta.json").read_text())
    elements = meta["supported_elements"]
    assert len(elements) >= 80
    assert {"H", "O", "Si", "Na", "Cl", "Cu", "Fe", "W", "Pt", "Ba"} <= set(elements)
    card = (MODEL_DIR / "README.md").read_text()
    assert f"Supported elements ({len(elements)}" in card
    missing = "Po"  # not among SevenNet-0's elements
    assert missing not in elements
    atoms = Atoms(f"Cu{missing}", positions=[[0, 0, 0], [2.6, 0, 0]], cell=[9, 9, 9], pbc=True)
    atoms.calc = calc32
    with pytest.raises(ValueError, match=f"does not support element.*{missing}"):
        atoms.get_potential_energy()
