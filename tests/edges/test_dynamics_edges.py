"""Dynamics and the calculator at the edges (issue 17): elements a model never saw are refused
everywhere (item 1); facet md names its outputs after the input, always writes the last step and
honours --trajectory in both engines (item 6); relax writes the format its -o extension names and
batched relaxations record the initial energy (item 9)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.io import read, write
from dyn_helpers import MORSE, ase_morse, strained_rattled_cu

from facet.cli import main
from facet.errors import InputError


@pytest.fixture(scope="module")
def default_calc():
    from facet import FacetCalculator

    return FacetCalculator("default")


def test_default_model_refuses_elements_it_never_saw(default_calc):
    # polonium is not among the teacher's (SevenNet-0's) 89 elements, so not in the data
    pon = bulk("PoN", "rocksalt", a=5.2)
    pon.calc = default_calc
    with pytest.raises(InputError, match=r"does not support element\(s\) Po \("):
        pon.get_potential_energy()
    si = bulk("Si", "diamond", a=5.43)
    si.calc = default_calc
    assert np.isfinite(si.get_potential_energy())
    # the shipped checkpoint's metadata lists the 89 elements of its training data
    assert len(default_calc.model.supported_numbers) == 89
    assert 84 not in default_calc.model.supported_numbers  # Po
    assert 118 not in default_calc.model.supported_numbers  # Og
    assert 94 in default_calc.model.supported_numbers  # Pu: in the teacher's data


def test_supported_elements_from_metadata_win_over_e0(tmp_path):
    from facet.elements import supported_elements_of_checkpoint

    (tmp_path / "meta.json").write_text(json.dumps({"supported_elements": ["Si", "O", "Li"]}))
    assert supported_elements_of_checkpoint(tmp_path) == (3, 8, 14)

    class Old:
        atomic_energies = np.zeros(119)

    Old.atomic_energies[[1, 26]] = [-1.1, -8.2]
    (tmp_path / "meta.json").write_text(json.dumps({"step": 3}))
    assert supported_elements_of_checkpoint(tmp_path, Old()) == (1, 26)


def test_cli_relax_md_evaluate_refuse_unsupported_elements(tmp_path, capsys):
    og = Atoms("SiOg", positions=[[0, 0, 0], [2.4, 0, 0]], cell=[6, 6, 6], pbc=True)
    write(tmp_path / "og.extxyz", og)
    for argv in (
        ["relax", str(tmp_path / "og.extxyz"), "-o", str(tmp_path / "r.extxyz")],
        ["relax", str(tmp_path / "og.extxyz"), "--batched", "-o", str(tmp_path / "r.extxyz")],
        ["md", str(tmp_path / "og.extxyz"), "--steps", "2", "-o", str(tmp_path / "m.extxyz")],
    ):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert "does not support element(s) Og" in err and "Traceback" not in err
    assert not list(tmp_path.glob("[rm].*"))


def test_batched_paths_refuse_undeclared_elements():
    from facet.dynamics import BatchedFIRE, MorsePotential
    from facet.dynamics.jaxmd import JaxMD

    model = MorsePotential(**MORSE)
    model.supported_numbers = (29,)
    mixed = bulk("Cu", "fcc", a=3.6) * (2, 1, 1)
    mixed.numbers[1] = 79
    with pytest.raises(InputError, match=r"structure 0 \(AuCu\).*element\(s\) Au"):
        BatchedFIRE(model).relax([mixed])
    with pytest.raises(InputError, match=r"element\(s\) Au"):
        JaxMD(model).run(mixed, 2)


def test_info_prints_supported_elements(capsys):
    assert main(["info", "--model", "default"]) == 0
    out = capsys.readouterr().out
    assert "supported elements (89): H He Li" in out and " U Np Pu" in out and "Po" not in out


# -- item 6: facet md ----------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["ase", "jax"])
def test_md_outputs_named_after_input_last_step_written(engine, tmp_path, morse_model,
                                                        monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write("md_final.extxyz", bulk("Cu", "fcc", a=3.6) * (2, 2, 2))
    before = (tmp_path / "md_final.extxyz").read_bytes()
    rc = main(["md", "md_final.extxyz", "--model", morse_model, "--engine", engine,
               "--steps", "25", "--log-interval", "10", "--temperature", "500", "--no-progress"])
    assert rc == 0
    assert (tmp_path / "md_final.extxyz").read_bytes() == before  # the input is untouched
    final = read("md_final_md_final.extxyz")
    traj = read("md_final_md.traj", index=":")
    assert len(traj) == 4  # steps 0, 10, 20 and the last, 25
    np.testing.assert_allclose(traj[-1].positions, final.positions, atol=1e-5)
    ref = final.copy()
    ref.calc = ase_morse()
    e_final = ref.get_potential_energy()
    np.testing.assert_allclose(traj[-1].get_potential_energy(), e_final, atol=1e-4)
    out = capsys.readouterr().out
    printed = float(out.split("E_pot = ")[1].split()[0])
    assert "final (step 25)" in out
    np.testing.assert_allclose(printed, e_final, atol=1e-4)
    log = (tmp_path / "md_final_md.log").read_text().splitlines()
    if engine == "jax":
        steps = [int(float(line.split(",")[0])) for line in log[1:]]
        assert steps == [0, 10, 20, 25]
    else:
        assert len(log) == 1 + 4  # header + 4 records


def test_md_refuses_to_overwrite_its_input(tmp_path, morse_model, capsys):
    write(tmp_path / "in.extxyz", bulk("Cu", "fcc", a=3.6) * (2, 2, 2))
    before = (tmp_path / "in.extxyz").read_bytes()
    for opt in ("-o", "--log", "--trajectory"):
        rc = main(["md", str(tmp_path / "in.extxyz"), "--model", morse_model, "--steps", "2",
                   opt, str(tmp_path / "in.extxyz")])
        assert rc == 2
        assert "is the input file" in capsys.readouterr().err
    assert (tmp_path / "in.extxyz").read_bytes() == before


# -- item 9: relax -------------------------------------------------------------------------------


def test_relax_output_format_from_extension(tmp_path, morse_model):
    write(tmp_path / "cu.extxyz", strained_rattled_cu(0))
    rc = main(["relax", str(tmp_path / "cu.extxyz"), "--model", morse_model, "--steps", "5",
               "-o", str(tmp_path / "relaxed.cif"), "--no-progress"])
    assert rc in (0, 1)  # 5 steps: converged or not, the file is written
    text = (tmp_path / "relaxed.cif").read_text()
    assert text.lstrip().startswith("data_") and "Properties=" not in text
    cif = read(tmp_path / "relaxed.cif", format="cif")
    assert cif.get_chemical_formula() == "Cu8"


def test_batched_relax_records_initial_energy(tmp_path, morse_model):
    structures = [strained_rattled_cu(0), strained_rattled_cu(1, cubic=True)]
    write(tmp_path / "in.extxyz", structures)
    rc = main(["relax", str(tmp_path / "in.extxyz"), "--model", morse_model, "--batched",
               "--steps", "20", "-o", str(tmp_path / "b.extxyz")])
    assert rc in (0, 1)  # converged or not within 20 steps: the initial energies are the point
    for frame, s in zip(read(tmp_path / "b.extxyz", index=":"), structures, strict=True):
        ref = s.copy()
        ref.calc = ase_morse()
        np.testing.assert_allclose(frame.info["initial_energy"], ref.get_potential_energy(),
                                   atol=1e-4)
