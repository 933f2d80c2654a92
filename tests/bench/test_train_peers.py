"""The MACE peer runner and the training-throughput benchmark, without running any trainer.

Checked: the extxyz handed to MACE holds exactly the labels of the MPTrj JSON (units and sign
converted once: stress ``-kBar / 1602.1766208``), under the ``REF_*`` keys MACE is told to read;
the runner's parsing of MACE's results/log files and its throughput arithmetic; the
``mace_run_train`` command (MACE-MP-0 sizes, float32, nothing downloaded); a missing MACE
environment gives a ``skipped: <reason>`` row that reaches the report. No timing is asserted.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from facet.bench import train_peers as btp
from facet.bench.peers import mace_train

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "sample" / "mptrj_sample.json"


@pytest.fixture(scope="module")
def frames():
    return btp.read_frames(str(SAMPLE))


@pytest.fixture(scope="module")
def raw():
    return json.loads(SAMPLE.read_text())


def test_extxyz_for_mace_is_exact(frames, raw, tmp_path):
    """Every value MACE reads equals the JSON's, bit for bit, after the one unit conversion."""
    import ase.io

    sub = frames[::7]
    path = tmp_path / "t.extxyz"
    assert btp.write_mace_extxyz(sub, path) == len(sub)
    back = list(ase.io.iread(path, index=":", format="extxyz"))
    assert len(back) == len(sub)
    for f, atoms in zip(sub, back, strict=True):
        src = raw[f.material_id][f.frame_id]
        assert atoms.info["mp_id"] == f.material_id and atoms.info["frame_id"] == f.frame_id
        assert atoms.info["REF_energy"] == src["uncorrected_total_energy"]
        np.testing.assert_array_equal(atoms.arrays["REF_forces"], np.asarray(src["force"]))
        stress = np.asarray(atoms.info["REF_stress"], dtype=float).reshape(3, 3)
        np.testing.assert_array_equal(stress, -np.asarray(src["stress"]) / 1602.1766208)
        lattice = np.asarray(src["structure"]["lattice"]["matrix"])
        np.testing.assert_array_equal(atoms.cell[:], lattice)
        np.testing.assert_array_equal(atoms.positions, f.positions)
        np.testing.assert_array_equal(atoms.numbers, f.numbers)
        assert atoms.calc is None  # nothing under the plain keys that ASE would move to .calc


def test_extxyz_round_trip_through_facet_reader(frames, tmp_path):
    """Facet's trainer reads the same file back to identical frames (what both trainers see)."""
    from facet.data.extxyz import iter_extxyz

    path = tmp_path / "t.extxyz"
    btp.write_mace_extxyz(frames[:40], path)
    for a, b in zip(frames[:40], iter_extxyz(path), strict=True):
        for k in ("positions", "numbers", "cell", "forces", "stress"):
            np.testing.assert_array_equal(getattr(a, k), getattr(b, k))
        assert a.energy == b.energy and (a.material_id, a.frame_id) == (b.material_id, b.frame_id)
    assert mace_train.mean_atoms_per_structure(str(path)) == pytest.approx(
        np.mean([f.n_atoms for f in frames[:40]]), rel=0, abs=1e-12)


def test_unlabelled_frame_is_refused_by_name(frames, tmp_path):
    import dataclasses

    bad = dataclasses.replace(frames[3], forces=None)
    with pytest.raises(ValueError, match=f"{bad.frame_id}.*{bad.material_id}.*forces"):
        btp.write_mace_extxyz([frames[0], bad], tmp_path / "x.extxyz")


def test_prepare_data_is_a_seeded_subset(frames, tmp_path):
    a = btp.prepare_data([str(SAMPLE)], tmp_path / "a", max_structures=30, valid_structures=5)
    b = btp.prepare_data([str(SAMPLE)], tmp_path / "b", max_structures=30, valid_structures=5)
    assert Path(a["bench"]).read_text() == Path(b["bench"]).read_text()
    from facet.data.extxyz import iter_extxyz

    ids = [f.frame_id for f in iter_extxyz(a["bench"])]
    valid = [f.frame_id for f in iter_extxyz(a["valid"])]
    assert len(ids) == len(set(ids)) == 30 and valid == ids[:5]
    assert set(ids) <= {f.frame_id for f in frames} and a["source_frames"] == len(frames)


def _results_lines(times, epochs, evals):
    rows = [{"loss": 1.0, "mae_e_per_atom": 0.035, "mae_f": 0.13, "mae_stress": 0.0054,
             "time": 15.5, "mode": "eval", "epoch": None, "head": "Default"}]
    rows += [{"loss": 0.3, "time": t, "mode": "opt", "epoch": e}
             for t, e in zip(times, epochs, strict=True)]
    rows += [{"loss": 0.1, "mae_e_per_atom": ee, "mae_f": ff, "mae_stress": ss, "time": 3.0,
              "mode": "eval", "epoch": ep, "head": "Default"} for ep, ee, ff, ss in evals]
    return [json.dumps(r) for r in rows]


def test_parse_results_throughput_and_validation():
    times = [9.0, 7.0, 2.0, 4.0, 3.0, 5.0, 100.0]
    lines = _results_lines(times, [0, 0, 0, 0, 1, 1, 1], [(0, 0.02, 0.1, 0.004),
                                                          (1, 0.012, 0.08, 0.003)])
    out = mace_train.parse_results(lines, batch_size=8, mean_atoms=10.5, skip_steps=2)
    timed = [2.0, 4.0, 3.0, 5.0, 100.0]  # the first two steps of the first epoch are dropped
    assert out["steps_timed"] == 5 and out["steps_total"] == 7 and out["epochs_run"] == 2
    assert out["step_s"] == 4.0 and out["structures_per_s"] == 2.0
    assert out["atoms_per_s"] == pytest.approx(8 * 10.5 / 4.0, rel=1e-15)
    assert out["structures_per_s_min"] == 8 / 100.0 and out["structures_per_s_max"] == 4.0
    assert out["train_loop_s"] == pytest.approx(sum(times))
    assert sum(timed) < out["train_loop_s"]
    assert out["val_epoch"] == 1
    assert out["val_energy_mae_mev_atom"] == pytest.approx(12.0)
    assert out["val_forces_mae_mev_a"] == pytest.approx(80.0)
    assert out["val_stress_mae_mev_a3"] == pytest.approx(3.0)


def test_parse_results_names_bad_line():
    lines = _results_lines([1.0, 2.0, 3.0], [0, 0, 0], [])
    lines.insert(2, '{"loss": 0.3, "time": ')
    with pytest.raises(ValueError, match="line 3"):
        mace_train.parse_results(lines, batch_size=8, mean_atoms=10.0)


def test_cpu_share_window():
    # (wall, cpu, steps): steps stop growing at wall 9; later polls (final evaluation) ignored
    samples = [(1.0, 0.5, 1), (3.0, 1.0, 2), (5.0, 1.5, 3), (9.0, 2.5, 5), (12.0, 9.0, 5)]
    assert mace_train.cpu_share(samples) == pytest.approx(2.0 / 8.0)
    assert mace_train.cpu_share([(1.0, None, 1), (2.0, 1.0, 2)]) is None


def test_parse_params_from_log():
    log = "2026 INFO: Building model\n2026 INFO: Total number of parameters: 1234567\n"
    assert mace_train.parse_params(log) == 1234567
    assert mace_train.parse_params("no count here") is None


def test_command_is_mace_mp0_size_float32_offline():
    run = mace_train.MaceRun(train_file="t.xyz", valid_file="v.xyz", work_dir="w",
                             size="medium", batch_size=8, epochs=3)
    cmd = mace_train.command(run, "mace_run_train")
    flags = dict(zip(cmd[1::2], cmd[2::2], strict=False))
    assert flags["--hidden_irreps"] == "128x0e+128x1o" and flags["--max_L"] == "1"
    assert flags["--default_dtype"] == "float32" and flags["--r_max"] == "6.0"
    assert flags["--correlation"] == "3" and flags["--num_interactions"] == "2"
    assert (flags["--energy_key"], flags["--forces_key"], flags["--stress_key"]) == (
        "REF_energy", "REF_forces", "REF_stress")
    assert not any("foundation" in c for c in cmd) and "--atomic_numbers" not in cmd
    run89 = mace_train.MaceRun(train_file="t", valid_file="v", work_dir="w",
                               atomic_numbers=mace_train.MPTRJ_Z)
    cmd89 = mace_train.command(run89, "mace_run_train")
    zs = json.loads(cmd89[cmd89.index("--atomic_numbers") + 1])
    assert len(zs) == 89 and zs[82] == 83 and zs[83] == 89 and zs[-1] == 94
    with pytest.raises(ValueError, match="large"):
        mace_train.MaceRun(train_file="t", valid_file="v", work_dir="w", size="large")


def test_missing_mace_venv_is_reported_as_skipped(tmp_path):
    run = mace_train.MaceRun(train_file="t.xyz", valid_file="v.xyz",
                             work_dir=str(tmp_path / "w"), size="small")
    row = mace_train.train(run, venv=str(tmp_path / "no-such-venv"))
    assert row["status"].startswith("skipped: ") and "no-such-venv" in row["status"]
    assert not (tmp_path / "w").exists()  # nothing was run
    facet_row = {"trainer": "facet", "model": "facet-s", "status": "ok", "params": 1000,
                 "structures_per_s": 2.0, "atoms_per_s": 20.0}
    summary = btp.summarise([facet_row, row])
    mace = next(s for s in summary if s["model"] == "mace-small")
    assert mace["status"] == row["status"] and mace["blocks"] == 0
    assert "ratio_vs_mace_structures_per_s" not in summary[0]


def test_summary_medians_and_ratio():
    rows = [{"trainer": "facet", "model": "facet-s", "status": "ok", "params": 100,
             "structures_per_s": s, "atoms_per_s": 10 * s} for s in (1.0, 3.0, 2.0)]
    rows += [{"trainer": "mace", "model": "mace-small", "status": "ok", "params": 400,
              "structures_per_s": s, "atoms_per_s": 10 * s} for s in (4.0, 8.0)]
    f, m = btp.summarise(rows)
    assert (f["structures_per_s"], f["structures_per_s_min"], f["structures_per_s_max"]) == (
        2.0, 1.0, 3.0)
    assert m["structures_per_s"] == 6.0
    assert f["ratio_vs_mace_structures_per_s"] == pytest.approx(2.0 / 6.0)
    assert f["params_ratio_vs_mace"] == 0.25


def test_scrub_removes_machine_paths(tmp_path):
    home = str(Path("~").expanduser())
    row = {"cmd": f"--work_dir {tmp_path}/m --train_file {tmp_path}/d/t.extxyz",
           "venv": f"{home}/venvs/mace does not exist", "file": str(ROOT / "scripts" / "x.py"),
           "n": [1.5, "/tmp/facet_bench_x/a.json"]}
    out = btp.scrub(row, str(tmp_path))
    assert out["cmd"] == "--work_dir <work>/m --train_file <work>/d/t.extxyz"
    assert out["venv"] == "~/venvs/mace does not exist" and out["file"] == "./scripts/x.py"
    assert out["n"] == [1.5, "<work>/a.json"]
    cmd = btp.scrub("bench_train_peers.py --rounds 2 --venv /opt/envs/mace --work /x")
    assert cmd == "bench_train_peers.py --rounds 2 --venv <mace venv> --work /x"
