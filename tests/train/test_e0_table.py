"""Fixed E0 tables (model.atomic_energies): the teacher's isolated-atom energies as anchors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from facet.train.e0 import load_atomic_energies


def test_table_is_read_by_symbol(tmp_path):
    p = tmp_path / "e0.json"
    p.write_text(json.dumps({"H": -1.25, "O": -4.5, "Fe": -3.0}))
    e0 = load_atomic_energies(p, required=[1, 8])
    assert e0.shape == (119,)
    assert (e0[1], e0[8], e0[26]) == (-1.25, -4.5, -3.0)
    assert np.count_nonzero(e0) == 3


@pytest.mark.parametrize(
    ("table", "required", "match"),
    [
        ({"H": -1.0}, [1, 6], r"no E0 for the training element\(s\) C"),
        ({"Xx": -1.0}, [], "unknown element symbol 'Xx'"),
        ({"H": float("nan")}, [], "E0 of H is not a finite number"),
        ({"H": "abc"}, [], "E0 of H is not a finite number"),
        ([1, 2], [], "must map element symbols"),
    ],
)
def test_bad_tables_are_refused_naming_the_file_and_key(tmp_path, table, required, match):
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(table))
    with pytest.raises(ValueError, match=match) as err:
        load_atomic_energies(p, required=required)
    assert str(p) in str(err.value)


def test_shipped_teacher_table_covers_the_teacher_elements():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    path = root / "data" / "distill2" / "teacher_e0.json"
    table = json.loads(path.read_text())
    assert len(table) == 89  # SevenNet-0's elements
    e0 = load_atomic_energies(path)
    # isolated atoms: a few eV at most in magnitude (cohesive energies are not in them)
    assert np.all(np.abs(e0[np.nonzero(e0)]) < 15.0)


def test_training_with_a_fixed_table_keeps_exactly_its_e0s(tmp_path, run_kwargs):
    import jax
    from toy_training import TEACHER_E0, toy_config

    from facet.train.loop import train

    table = {"Si": -5.25, "O": -4.75, "Li": -2.0, "Au": -3.5}  # Au: not in the data, kept
    p = tmp_path / "e0.json"
    p.write_text(json.dumps(table))
    cfg = toy_config(tmp_path / "run", model={"atomic_energies": str(p)}, run={"epochs": 1})
    s = train(cfg, **run_kwargs)
    e0 = np.asarray(jax.device_get(s["rest"]["atomic_energies"].get_value()))
    assert (e0[14], e0[8], e0[3], e0[79]) == (-5.25, -4.75, -2.0, -3.5)
    # the least-squares fit on the same data gives other values (the teacher's E0s)
    assert abs(e0[14] - TEACHER_E0[14]) > 0.1


def test_a_table_missing_a_training_element_is_refused(tmp_path, run_kwargs):
    from toy_training import toy_config

    from facet.train.config import ConfigError
    from facet.train.loop import train

    p = tmp_path / "e0.json"
    p.write_text(json.dumps({"Si": -5.0, "O": -4.0}))  # no Li
    cfg = toy_config(tmp_path / "run", model={"atomic_energies": str(p)}, run={"epochs": 1})
    with pytest.raises(ConfigError, match=r"model.atomic_energies.*training element\(s\) Li"):
        train(cfg, **run_kwargs)


def test_config_checks_the_table_path_and_refuses_it_with_fine_tuning(tmp_path):
    from toy_training import toy_config

    from facet.train.config import ConfigError, check_data_paths

    data = tmp_path / "d.json"
    data.write_text("{}")
    cfg = toy_config(tmp_path / "run", model={"atomic_energies": str(tmp_path / "no.json")},
                     data={"train": [str(data)]})
    with pytest.raises(ConfigError, match="neither 'fit' nor an existing JSON file"):
        check_data_paths(cfg)
    table = tmp_path / "e0.json"
    table.write_text("{}")
    cfg = toy_config(tmp_path / "run", model={"atomic_energies": str(table),
                                              "init_from": "default"},
                     data={"train": [str(data)]})
    with pytest.raises(ConfigError, match="for training from scratch"):
        check_data_paths(cfg)
