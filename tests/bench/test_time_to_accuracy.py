"""The time-to-accuracy harness (facet.bench.time_to_accuracy) without training anything: reading
prepared split files and writing MACE's extxyz, Facet's curve from a training log, the crossing
times, the ratio and reading MACE's evaluator output."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from facet.bench import time_to_accuracy as tta
from facet.bench.train_peers import read_frames

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "sample" / "mptrj_sample.json"


def _split_folder(tmp_path: Path, names=("train", "val", "test")) -> dict[str, list[str]]:
    data = json.loads(SAMPLE.read_text())
    mats = sorted(data)
    lists = {"train": mats[:16], "val": mats[16:19], "test": mats[19:]}
    for name in names:
        with gzip.open(tmp_path / f"{name}.json.gz", "wt") as fh:
            json.dump({m: data[m] for m in lists[name]}, fh)
    return lists


def test_prepared_split_files_become_mace_extxyz(tmp_path):
    src = tmp_path / "splits"
    src.mkdir()
    lists = _split_folder(src)
    work = tmp_path / "work"
    out = tta.prepare(str(src), work, mace_valid=4)
    originals = {f.frame_id: f for f in read_frames(str(SAMPLE))}
    for name, mats in lists.items():
        written = read_frames(str(work / f"{name}.extxyz"))
        assert {f.material_id for f in written} == set(mats)
        expected = [f for f in originals.values() if f.material_id in set(mats)]
        assert len(written) == len(expected) == out["splits"][name]["structures"]
        for f in written:  # MACE's REF_* labels carry the same numbers (exact floats)
            o = originals[f.frame_id]
            assert f.energy == o.energy
            np.testing.assert_array_equal(f.forces, o.forces)
            np.testing.assert_array_equal(f.stress, o.stress)
            np.testing.assert_array_equal(f.positions, o.positions)
    small = read_frames(str(work / "val_small.extxyz"))
    assert [f.frame_id for f in small] == [f.frame_id for f in
                                           read_frames(str(work / "val.extxyz"))][:4]
    assert json.loads((work / "prepared.json").read_text())["outside_mptrj_elements"] == []


def test_split_folder_without_test_names_it(tmp_path):
    _split_folder(tmp_path, names=("train", "val"))
    with pytest.raises(FileNotFoundError, match=r"no \['test'\]"):
        tta.load_split_files(str(tmp_path))


def _log(path: Path, rows: list[dict]) -> Path:
    cols = ["step", "epoch", "kind", "wall_s", "structures_per_s", "forces_mae", "energy_mae",
            "stress_mae"]
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, cols)
        w.writeheader()
        for r in rows:
            w.writerow(r)
    return path


def test_facet_curve_sums_training_windows_only(tmp_path):
    rows = [{"step": 50, "kind": "train", "wall_s": 100.0, "structures_per_s": 4.0},  # compile
            {"step": 100, "kind": "train", "wall_s": 20.0, "structures_per_s": 20.0},
            {"step": 100, "kind": "val", "forces_mae": 300.0, "energy_mae": 1.0,
             "stress_mae": 2.0},
            {"step": 150, "kind": "train", "wall_s": 20.0, "structures_per_s": 20.0},
            {"step": 200, "kind": "train", "wall_s": 20.0, "structures_per_s": 20.0},
            {"step": 200, "kind": "val", "forces_mae": 200.0, "energy_mae": 1.0,
             "stress_mae": 2.0}]
    c = tta.facet_curve(_log(tmp_path / "log.csv", rows))
    assert [(p["step"], p["cpu_s"], p["forces_mae"]) for p in c["points"]] == [
        (100, 120.0, 300.0), (200, 160.0, 200.0)]
    assert c["seconds_per_step"] == pytest.approx(0.4)
    assert c["structures_per_step"] == pytest.approx(8.0)
    assert [w["step"] for w in c["startup_windows"]] == [50]
    assert c["startup_excess_s"] == pytest.approx(80.0)
    cut = tta.facet_curve(tmp_path / "log.csv", max_step=150)
    assert [p["step"] for p in cut["points"]] == [100] and cut["last_step"] == 150


def test_facet_curve_refuses_a_val_row_off_the_train_rows(tmp_path):
    rows = [{"step": 50, "kind": "train", "wall_s": 20.0, "structures_per_s": 20.0},
            {"step": 100, "kind": "val", "forces_mae": 300.0}]
    with pytest.raises(ValueError, match="val row at step 100"):
        tta.facet_curve(_log(tmp_path / "log.csv", rows))


def test_time_to_reach_interpolates_and_bounds():
    pts = [{"step": 1000, "cpu_s": 100.0, "forces_mae": 300.0},
           {"step": 2000, "cpu_s": 300.0, "forces_mae": 200.0},
           {"step": 3000, "cpu_s": 500.0, "forces_mae": 150.0}]
    r = tta.time_to_reach(pts, 250.0)
    assert r["reached"] and r["cpu_s"] == pytest.approx(200.0) and r["step"] == 1500
    assert tta.time_to_reach(pts, 350.0) == {"reached": True, "cpu_s": 100.0, "step": 1000,
                                             "bound": "upper"}
    r = tta.time_to_reach(pts, 100.0)
    assert not r["reached"] and r["best"] == 150.0 and r["cpu_s"] == 500.0


def test_compare_gives_ratio_and_its_split():
    facet = {"points": [{"step": 1000, "cpu_s": 400.0, "forces_mae": 260.0},
                        {"step": 2000, "cpu_s": 800.0, "forces_mae": 200.0}],
             "structures_per_step": 8.0}
    mace = [{"step": 500, "cpu_s": 600.0, "forces_mae": 280.0},
            {"step": 1000, "cpu_s": 1200.0, "forces_mae": 230.0}]
    c = tta.compare(facet, mace, train_structures=16000)
    assert c["target_forces_mae"] == 230.0
    assert c["facet"]["cpu_s"] == pytest.approx(600.0)  # halfway between 400 s and 800 s
    assert c["ratio"] == pytest.approx(0.5)
    s = c["split"]
    assert s["steps_ratio"] * s["step_cost_ratio"] == pytest.approx(c["ratio"])
    assert s["facet_steps"] == pytest.approx(1500) and s["mace_epochs"] == pytest.approx(0.5)
    assert c["ratio_by_target"][0]["facet_bound"] == "upper"


def test_read_mace_predictions(tmp_path):
    from ase import Atoms
    from ase.io import write

    a = Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.8]], cell=np.eye(3) * 5, pbc=True)
    a.info["MACE_energy"] = -1.5
    a.arrays["MACE_forces"] = np.array([[0.1, 0.2, 0.3], [-0.1, -0.2, -0.3]])
    stress = np.arange(9.0).reshape(3, 3) * 1e-3
    a.info["MACE_stress"] = stress
    write(tmp_path / "p.xyz", [a], format="extxyz")
    (p,) = tta.read_mace_predictions(tmp_path / "p.xyz")
    assert p["energy"] == -1.5
    np.testing.assert_allclose(p["forces"], a.arrays["MACE_forces"])
    np.testing.assert_allclose(p["stress"], stress)
    del a.info["MACE_energy"]
    write(tmp_path / "q.xyz", [a], format="extxyz")
    with pytest.raises(ValueError, match="structure 0 has no 'MACE_energy'"):
        tta.read_mace_predictions(tmp_path / "q.xyz")


@pytest.mark.slow  # matplotlib and jax imports: several seconds on a shared core
def test_report_writes_ratio_plot_and_no_local_paths(tmp_path):
    work = tmp_path / "work"
    (work / "mace_run").mkdir(parents=True)
    (work / "prepared.json").write_text(json.dumps({
        "data": "runs/x", "val_zero_force_mae": 310.0,
        "splits": {n: {"structures": 16000, "materials": 10} for n in ("train", "val", "test")}}))
    (work / "mace_run" / "train_row.json").write_text(json.dumps({
        "venv": str(tmp_path / "venv"), "command": f"{tmp_path / 'venv'}/bin/python x",
        "params": 10, "every": 500, "batch_size": 8, "elements": "mptrj", "versions": {}}))
    (work / "mace_val.json").write_text(json.dumps([
        {"step": 500, "cpu_s": 600.0, "forces_mae": 280.0},
        {"step": 1000, "cpu_s": 1200.0, "forces_mae": 230.0}]))
    rows = [{"step": 1000, "kind": "train", "wall_s": 400.0, "structures_per_s": 20.0},
            {"step": 1000, "kind": "val", "forces_mae": 260.0},
            {"step": 2000, "kind": "train", "wall_s": 400.0, "structures_per_s": 20.0},
            {"step": 2000, "kind": "val", "forces_mae": 200.0}]
    log = _log(tmp_path / "log.csv", rows)
    out = tmp_path / "out"
    res = tta.report(work, log, out, command="cmd", facet_config=None)
    assert res["comparison"]["ratio"] == pytest.approx(0.5)
    readme = (out / "README.md").read_text()
    assert "0.50** (interpolated)" in readme and "not met" in readme
    assert (out / "time_to_accuracy.png").stat().st_size > 0
    assert str(tmp_path / "venv") not in (out / "results.json").read_text()
