"""Every bad input to FacetCalculator fails early with a message saying what and where."""

from __future__ import annotations

import warnings

import jax
import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from calc_helpers import MORSE

from facet import FacetCalculator
from facet.dynamics import MorsePotential


@pytest.fixture(scope="module")
def calc():
    return FacetCalculator(model=MorsePotential(**MORSE))


def test_unsupported_elements(calc):
    atoms = Atoms("CuX", positions=[[0, 0, 0], [2.5, 0, 0]])  # X: atomic number 0
    atoms.calc = calc
    with pytest.raises(ValueError, match=r"Atoms CuX.*atomic numbers \[0\] are not chemical"):
        atoms.get_potential_energy()
    atoms.numbers[1] = 119
    with pytest.raises(ValueError, match=r"Atoms with 2 atoms: .*\[119\]"):
        atoms.get_potential_energy()


def test_model_declared_elements():
    model = MorsePotential(**MORSE)
    model.supported_numbers = np.array([29, 79])
    atoms = Atoms("CuFe", positions=[[0, 0, 0], [2.5, 0, 0]])
    atoms.calc = FacetCalculator(model=model)
    with pytest.raises(ValueError, match="does not support element.*Fe"):
        atoms.get_potential_energy()


def test_nan_positions(calc):
    atoms = bulk("Cu", "fcc", a=3.6) * (2, 1, 1)
    atoms.positions[1, 2] = np.nan
    atoms.calc = calc
    with pytest.raises(ValueError, match=r"positions of atoms \[1\] are NaN"):
        atoms.get_forces()


def test_overlapping_atoms(calc):
    atoms = Atoms("Cu3", positions=[[0, 0, 0], [2.5, 0, 0], [2.5, 0.3, 0.2]])
    atoms.calc = calc
    with pytest.raises(ValueError, match=r"atoms [12] and [12] are 0.361 A apart.*overlapping"):
        atoms.get_potential_energy()
    # Overlap with a periodic image of itself (a 0.4 A cell vector).
    tiny = Atoms("Cu", cell=[0.4, 3.0, 3.0], pbc=True)
    tiny.calc = calc
    with pytest.raises(ValueError, match=r"atoms 0 and 0 \(periodic image .*\) are 0.400 A"):
        tiny.get_potential_energy()


def test_missing_and_corrupt_model_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere/model.ckpt does not exist"):
        FacetCalculator(model=str(tmp_path / "nowhere" / "model.ckpt"))
    bad = tmp_path / "run"
    (bad / "checkpoints" / "step_000000010").mkdir(parents=True)
    (bad / "checkpoints" / "step_000000010" / "COMPLETE").write_text("garbage")
    (bad / "checkpoints" / "step_000000010" / "meta.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"cannot load a Facet model from .*run"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            FacetCalculator(model=str(bad))
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00\x01 not a model")
    with pytest.raises(ValueError, match="cannot load a Facet model from .*junk.bin"):
        FacetCalculator(model=str(junk))


def test_default_and_unknown_names(monkeypatch, tmp_path):
    import facet.model_io as fc

    # an installation whose shipped model folder is missing says so and lists the alternatives
    monkeypatch.setattr(fc, "_shipped_dir", lambda: tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match=r"no default Facet model is shipped.*facet-s"):
        FacetCalculator()
    monkeypatch.undo()
    with pytest.raises(ValueError, match=r"unknown model 'nonsense'.*registered.*preset"):
        FacetCalculator(model="nonsense")
    with pytest.raises(TypeError, match="got int"):
        FacetCalculator(model=3)


def test_dtype_mismatch_for_a_foreign_model():
    with pytest.raises(ValueError, match="float32; build it in float64"):
        with jax.enable_x64(True):
            FacetCalculator(model=MorsePotential(**MORSE), dtype="float64")
