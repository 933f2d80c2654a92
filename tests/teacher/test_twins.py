"""Held-out materials are never a training material under another name (facet.teacher.twins)."""

import json
from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk

from facet.teacher.twins import join_twins, structure_key, structure_twins

ROOT = Path(__file__).resolve().parents[2]
DISTILL2 = ROOT / "data" / "distill2"


def test_the_same_structure_under_another_cell_origin_and_order_is_a_twin():
    prim = bulk("Si", "diamond", a=5.43)
    cubic = bulk("Si", "diamond", a=5.43, cubic=True)  # 8 atoms, another cell
    moved = cubic.copy()
    moved.translate([0.3, 0.1, 0.2])  # another origin
    moved.wrap()
    moved = moved[np.random.default_rng(0).permutation(len(moved))]  # another atom order
    strained = prim.copy()
    strained.set_cell(prim.cell[:] * 1.02, scale_atoms=True)  # a different structure
    ge = bulk("Ge", "diamond", a=5.43)  # same lattice, another element
    nacl_rs = bulk("NaCl", "rocksalt", a=5.64)
    nacl_zb = bulk("NaCl", "zincblende", a=5.64)  # same formula, another prototype
    assert structure_key(prim) == structure_key(cubic) == structure_key(moved)
    assert structure_key(strained) != structure_key(prim)
    groups = structure_twins([prim, ge, cubic, strained, nacl_rs, moved, nacl_zb],
                             ["si", "ge", "si8", "si+2%", "nacl-rs", "si8'", "nacl-zb"])
    assert groups == [["si", "si8", "si8'"]]
    with pytest.raises(ValueError, match="2 structures for 1 ids"):
        structure_twins([prim, ge], ["si"])


def test_a_held_out_twin_of_a_training_material_joins_train_and_nothing_leaves_train():
    splits = {"train": ["a", "b", "c"], "val": ["d", "e"], "test": ["f", "g", "h"]}
    twins = [["a", "f"],        # test twin of a training material: to train
             ["e", "b", "g"],   # val and test twins of a training material: both to train
             ["d", "h"]]        # held out on both sides, no training twin: stays
    out, moved = join_twins(splits, twins)
    assert moved == ["e", "f", "g"]
    assert out == {"train": ["a", "b", "c", "e", "f", "g"], "val": ["d"], "test": ["h"]}
    assert join_twins(out, twins) == (out, [])  # idempotent


def test_the_committed_split_holds_out_no_trained_structure():
    """data/distill2/splits.json is plan()'s split, and none of its val or test materials is a
    training material's structure twin (the held-out errors are on unseen materials)."""
    from facet.teacher.distill2 import plan

    committed = json.loads((DISTILL2 / "splits.json").read_text())
    elements = sorted(json.loads((DISTILL2 / "teacher_e0.json").read_text()))
    specs, ids, splits = plan(0, elements)
    assert splits == committed
    train = set(committed["train"])
    for group in structure_twins([s.atoms for s in specs], ids):
        if train & set(group):
            assert set(group) <= train, group
    assert len(committed["test"]) >= 300
    assert sum(len(v) for v in committed.values()) == len(ids)
