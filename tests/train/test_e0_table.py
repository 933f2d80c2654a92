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
