"""facet.bench.learning_curve: shard prefixes by training frames, the validation log, the report."""

from __future__ import annotations

import json

import numpy as np
import pytest

from facet.bench.learning_curve import read_validation_log, report, shards_for_frames
from facet.teacher.distill2 import shard_path, write_shard


def _frame(mid):
    return {"structure": {"lattice": {"matrix": np.eye(3).tolist()},
                          "sites": [{"species": [{"element": "H", "occu": 1}],
                                     "abc": [0, 0, 0]}]},
            "uncorrected_total_energy": -1.0, "force": [[0, 0, 0]],
            "stress": np.zeros((3, 3)).tolist(), "mp_id": mid}


@pytest.fixture
def data(tmp_path):
    d = tmp_path / "set"
    splits = {"train": [], "val": [], "test": []}
    for k in range(3):  # 3 shards x 2 materials x (3 frames): one train, one test each
        results = []
        for j, split in enumerate(("train", "test")):
            mid = f"m{k}{j}"
            splits[split].append(mid)
            results.append({"meta": {"mp_id": mid, "n_frames": 3, "kind": "alloy", "name": mid},
                            "frames": {f"{mid}-0-{i}": _frame(mid) for i in range(3)}})
        write_shard(shard_path(str(d), k), results)
    (d / "splits.json").write_text(json.dumps(splits))
    return d


def test_smallest_prefix_with_enough_training_frames(data):
    assert shards_for_frames(str(data), 1) == (1, 3)
    assert shards_for_frames(str(data), 4) == (2, 6)
    assert shards_for_frames(str(data), 9) == (3, 9)
    assert shards_for_frames(str(data), 100) == (3, 9)  # all there is, said by the caller


def test_validation_rows_and_report(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "log.csv").write_text(
        "step,epoch,kind,lr,loss,grad_norm,energy_mae,energy_rmse,forces_mae,forces_rmse,"
        "stress_mae,stress_rmse,structures_per_s,atoms_per_s,wall_s\n"
        "10,0,train,0.1,1,1,50,60,300,400,9,10,1,1,5\n"
        "20,0,train,0.1,1,1,50,60,300,400,9,10,1,1,5\n"
        "20,0,val,,2,,40,50,200,300,8,9,,,\n"  # as the loop writes them: no wall_s
        "30,0,train,0.1,1,1,50,60,300,400,9,10,1,1,4\n"
        "40,1,train,0.1,1,1,50,60,300,400,9,10,1,1,6\n"
        "40,1,val,,1,,30,40,150,200,6,7,,,\n")
    rows = read_validation_log(run)  # wall time: the training rows' wall_s summed so far
    assert [r["step"] for r in rows] == [20, 40]
    assert rows[1]["forces_mae"] == 150 and rows[0]["wall_s"] == 10
    points = [{"train_frames": n, "train_materials": n // 10, "e0": e0, "steps": 100,
               "cpu_s": 1.0, "test": {"energy_mae": 100 / n, "forces_mae": 1e3 / n,
                                      "stress_mae": 10 / n}}
              for n in (100, 1000) for e0 in ("fit", "teacher")]
    out = report(points, rows, tmp_path / "out", "cmd")
    text = (out / "README.md").read_text()
    assert "| 1000 | 100 | fit | 100 | 0.1 | 1.0 | 0.01 | 1.0 |" in text
    assert "| 40 | 0.01 | 30.0 | 150.0 | 6.00 |" in text
    assert (out / "learning_curve.png").stat().st_size > 1000
    assert json.loads((out / "results.json").read_text())["points"] == points


def test_reuse_points_keeps_the_data_size_curve(tmp_path):
    """--from-log RUN --reuse-points rewrites the steps curve and keeps the earlier points."""
    from facet.bench.learning_curve import main

    run, out = tmp_path / "run", tmp_path / "out"
    run.mkdir()
    (run / "log.csv").write_text(
        "step,epoch,kind,lr,loss,grad_norm,energy_mae,energy_rmse,forces_mae,forces_rmse,"
        "stress_mae,stress_rmse,structures_per_s,atoms_per_s,wall_s\n"
        "10,0,train,0.1,1,1,50,60,300,400,9,10,1,1,5\n"
        "10,0,val,,2,,40,50,200,300,8,9,,,\n")
    points = [{"train_frames": 100, "train_materials": 10, "e0": "fit", "steps": 5,
               "cpu_s": 1.0, "test": {"energy_mae": 1.0, "forces_mae": 2.0, "stress_mae": 3.0}}]
    report(points, [], out, "first")
    with pytest.raises(SystemExit):  # nothing to reuse in an empty folder
        main(["--from-log", str(run), "--reuse-points", "--out", str(tmp_path / "none")])
    assert main(["--from-log", str(run), "--reuse-points", "--out", str(out)]) == 0
    saved = json.loads((out / "results.json").read_text())
    assert saved["points"] == points and [r["step"] for r in saved["validation_log"]] == [10]
    assert "| 100 | 10 | fit | 5 |" in (out / "README.md").read_text()


@pytest.mark.parametrize("e0", ["fit", "teacher"])
def test_each_e0_arm_names_its_energies(tmp_path, monkeypatch, e0):
    """The A/B must not inherit the recipe's own E0 choice: each arm overrides
    model.atomic_energies (the recipe now defaults to the teacher's table)."""
    import argparse

    import facet.bench.learning_curve as lc
    import facet.teacher.distill2 as d2
    import facet.train.evaluate as ev

    def fake_split(data, out, max_shards=None, splits=("train", "val", "test")):
        return {s: {"path": f"{out}/{s}.json.gz", "frames": 10, "materials": 2} for s in splits}

    cmds = []
    monkeypatch.setattr(d2, "write_split_files", fake_split)
    monkeypatch.setattr(lc.subprocess, "run", lambda cmd, check: cmds.append(cmd))
    monkeypatch.setattr(ev, "evaluate", lambda *a, **k: {"metrics": {"forces_mae": 1.0}})
    args = argparse.Namespace(data="data/distill2", config="c.yaml", steps=10, override=[])
    point = lc._train_point(args, tmp_path, 3, e0)
    want = ("data/distill2/teacher_e0.json" if e0 == "teacher" else "fit")
    assert f"model.atomic_energies={want}" in cmds[0]
    assert point["e0"] == e0 and point["test"] == {"forces_mae": 1.0}
