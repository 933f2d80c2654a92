"""The default model's recipe (facet.train.default_model, the code behind
scripts/train_default_model.py): the timing of the calibration run, ``prepare`` on a sharded
set, and the model card's sections."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from facet.teacher.shards import material_kinds, shard_path, write_shard
from facet.train import default_model as dm
from facet.train.evaluate import group_metrics
from facet.train.model_card import write_card


def test_seconds_per_step_is_the_median_after_the_warm_up(tmp_path):
    log = tmp_path / "log.csv"
    # rows every 5 steps: 9 s of compilation up to step 5, then 1.0, 1.5, 1.2 s per 5 steps;
    # a validation row without wall time is ignored
    log.write_text("kind,step,wall_s\ntrain,5,9.0\ntrain,10,1.0\nval,10,\ntrain,15,1.5\n"
                   "train,20,1.2\n")
    assert dm.seconds_per_step(log, skip=5) == pytest.approx(1.2 / 5)
    with pytest.raises(RuntimeError, match="too few logged steps after step 20"):
        dm.seconds_per_step(log, skip=20)


def _sharded_set(root):
    def frame(k):
        return {"structure": {"lattice": {"matrix": np.eye(3).tolist()},
                              "sites": [{"species": [{"element": "H", "occu": 1}],
                                         "abc": [0, 0, 0]}]},
                "uncorrected_total_energy": -1.0 * k, "force": [[0, 0, 0]],
                "stress": np.zeros((3, 3)).tolist()}

    (root / "shards").mkdir(parents=True)
    (root / "splits.json").write_text(json.dumps({"train": ["a", "b"], "val": ["c"],
                                                  "test": ["d"]}))
    results = [{"meta": {"mp_id": m, "name": m, "kind": "alloy", "n_frames": 2},
                "frames": {f"{m}-0-{k}": frame(k) for k in range(2)}} for m in "abcd"]
    write_shard(shard_path(str(root), 0), results[:3])  # d: not labelled yet
    return root


def test_prepare_writes_one_file_per_split_of_a_sharded_set(tmp_path, capsys):
    data = _sharded_set(tmp_path / "set")
    assert dm.main(["prepare", "--data", str(data), "--work", str(tmp_path / "work")]) == 0
    with gzip.open(tmp_path / "work" / "train.json.gz", "rt") as f:
        assert sorted(json.load(f)) == ["a", "b"]
    printed = capsys.readouterr().out
    assert ("train: 4 frames of 2 materials (0 not labelled yet, 0 without a usable frame)"
            in printed)
    assert "test: 0 frames of 0 materials (1 not labelled yet" in printed


def test_card_of_a_sharded_set_states_its_counts_and_errors(tmp_path):
    data = _sharded_set(tmp_path / "set")
    results = [{"meta": {"mp_id": "d", "name": "d", "kind": "alloy", "n_frames": 0},
                "frames": {}}]
    write_shard(shard_path(str(data), 1), results)  # d labelled, without a usable frame
    out = tmp_path / "model"
    out.mkdir()
    (out / "meta.json").write_text(json.dumps({"supported_elements": ["H"]}))
    (out / "config.yaml").write_text("model:\n  atomic_energies: fit\n")
    x = {"structures": 2, "materials": 1, "energy_mae": 1.25, "energy_rmse": 2.0,
         "forces_mae": 33.3, "forces_rmse": 44.4, "stress_mae": 0.123, "stress_rmse": 0.456}
    result = {"params": 1234, "source_checkpoint_step": "step_000000100", "arrays_sha256": "ab",
              "metrics": {"val": x, "test": x}, "data_sha256": "cd", "card_note": "Early."}
    text = write_card(out, result, str(data))
    assert (out / "README.md").read_text() == text
    assert "6 frames of 4 materials in 2 shards" in text
    assert "train / val / test = 2 / 1 / 1 materials (4 / 2 / 0 frames)" in text
    assert "| test | 1 | 2 | 1.2 / 2.0 | 33.3 / 44.4 | 0.12 / 0.46 |" in text
    assert "- **Early.**" in text and "least-squares E0s" in text
    assert "by kind of structure" not in text  # metrics without the breakdown: no table

    x["by_kind"] = {"alloy": {"structures": 2, "energy_mae": 1.25, "energy_median": 0.5,
                              "forces_mae": 33.3, "forces_median": 20.0},
                    "molecule": {"structures": 1, "energy_mae": 9.0, "energy_median": 9.0}}
    text = write_card(out, result, str(data))
    assert "| alloy | 2 | 1.2 / 0.5 | 33.3 / 20.0 | - |" in text
    assert "| molecule | 1 | 9.0 / 9.0 | - | - |" in text


def test_material_kinds_come_from_the_shard_metadata(tmp_path):
    data = _sharded_set(tmp_path / "set")
    write_shard(shard_path(str(data), 1), [{"meta": {"mp_id": "d", "name": "d",
                                                     "kind": "surface", "n_frames": 0},
                                            "frames": {}}])
    assert material_kinds(str(data)) == {"a": "alloy", "b": "alloy", "c": "alloy",
                                         "d": "surface"}


def test_group_metrics_known_values():
    # three structures (2, 1, 1 atoms): groups g, h, g; the third has no energy or stress label
    pred = {
        "n_atoms": np.array([2, 1, 1]),
        "energy": np.array([1.0, 5.0, 100.0]), "energy_ref": np.array([0.0, 4.0, 0.0]),
        "has_energy": np.array([True, True, False]),
        "forces": np.zeros((4, 3)), "forces_ref": np.arange(12.0).reshape(4, 3) * 1e-3,
        "has_forces": np.array([True, True, True, False]),
        "stress": np.zeros((3, 3, 3)), "stress_ref": np.ones((3, 3, 3)) * 2e-3,
        "has_stress": np.array([True, False, False]),
    }
    got = group_metrics(pred, ["g", "h", "g"])
    assert got["g"]["structures"] == 2 and got["h"]["structures"] == 1
    # energy per atom: g has only structure 0 labelled, |1 - 0| / 2 atoms = 0.5 eV = 500 meV
    assert got["g"]["energy_mae"] == pytest.approx(500.0)
    assert got["h"]["energy_mae"] == got["h"]["energy_median"] == pytest.approx(1000.0)
    # forces: g owns atoms 0, 1 (structure 0) and 3 (unlabelled), h owns atom 2
    assert got["g"]["forces_mae"] == pytest.approx(np.arange(6.0).mean())
    assert got["g"]["forces_median"] == pytest.approx(2.5)
    assert got["h"]["forces_mae"] == pytest.approx(np.arange(6.0, 9.0).mean())
    assert got["g"]["stress_mae"] == pytest.approx(2.0) and "stress_mae" not in got["h"]
    with pytest.raises(ValueError, match="2 group labels for 3 structures"):
        group_metrics(pred, ["g", "h"])
