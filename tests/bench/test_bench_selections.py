"""The wrapping selections (``model``, ``train``, ``accuracy``, ``all``) in tiny configurations.

Checked through the real command line: ``train --quick`` / ``accuracy --quick`` re-render the
recorded run (every number equals the recorded JSON, a model absent from the run and a peer
skipped in it are rows with reasons, report and plot written, nothing written into the full
report's folder); with no recorded run every trainer is a ``skipped: <reason>`` row naming the
missing file; ``all --quick`` runs its selections in separate processes, records each one's
status and time and writes the summary; the ``model`` rows keep the script's numbers and a failed
script is one ``failed`` row. The real ``python -m facet.bench.model`` run is marked slow.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import pytest

from facet.bench import meta, run_all, wrapped
from facet.cli import main

TRAIN = {
    "command": "python scripts/bench_train_peers.py --presets facet-s",
    "note": "facet-m was not run",
    "summary": [
        {"trainer": "facet", "model": "facet-s", "status": "ok", "params": 252057,
         "structures_per_s": 0.76, "structures_per_cpu_s": 2.52, "blocks": 2,
         "ratio_vs_mace_structures_per_cpu_s": 0.4953},
        {"trainer": "mace", "model": "mace-small", "status": "ok", "params": 1243536,
         "structures_per_s": 1.72, "structures_per_cpu_s": 5.09, "blocks": 2},
        {"trainer": "mace", "model": "mace-medium", "blocks": 0,
         "status": "skipped: MACE environment not found"},
    ],
}  # fmt: skip
ACCURACY = {
    "command": "python scripts/bench_accuracy.py --data data/distill --budget-minutes 120",
    "budget_minutes": 120, "splits": {"train": 10, "val": 2, "test": 2}, "data": "x",
    "trainers": [
        {"trainer": "facet", "model": "facet-s", "params": 252057, "steps": 900,
         "test": {"energy_mae": 12.5, "forces_mae": 80.25, "stress_mae": 3.5}},
        {"trainer": "mace", "model": "mace-small", "params": 1243536, "status": "ok",
         "steps_total": 400, "test": {"energy_mae": 11.0, "forces_mae": 90.5, "stress_mae": 4.0}},
    ],
}  # fmt: skip


@pytest.fixture()
def root(tmp_path):
    for rel, obj in (("train/train_peers.json", TRAIN), ("accuracy/accuracy.json", ACCURACY)):
        (tmp_path / rel).parent.mkdir(parents=True)
        (tmp_path / rel).write_text(json.dumps(obj))
    return tmp_path


def test_train_quick_rerenders_the_recorded_run(root):
    before = sorted(p.name for p in (root / "train").iterdir())
    assert main(["bench", "train", "--quick", "--root", str(root)]) == 0
    out = root / "quick" / "train"
    res = json.loads((out / "results.json").read_text())
    rows = {r["model"]: r for r in res["rows"]}
    assert set(rows) == {"facet-s", "mace-small", "facet-m", "mace-medium"}
    for i, s in enumerate(TRAIN["summary"][:2]):
        r = rows[s["model"]]
        assert r["source_index"] == i and r["status"] == "ok"
        for k in ("params", "structures_per_s", "structures_per_cpu_s"):
            assert r[k] == s[k]
    assert rows["mace-medium"]["status"] == "skipped: MACE environment not found"
    assert rows["facet-m"]["status"].startswith("skipped: not in the recorded run")
    text = (out / "report.md").read_text()
    assert "skipped: MACE environment not found" in text and "0.495" in text
    assert (out / "train_throughput.png").stat().st_size > 0
    assert res["meta"]["quick"] and res["meta"]["hardware"]["cpu"]
    assert sorted(p.name for p in (root / "train").iterdir()) == before  # full folder untouched


def test_accuracy_quick_with_and_without_a_recorded_run(root, tmp_path_factory):
    assert main(["bench", "accuracy", "--quick", "--root", str(root)]) == 0
    res = json.loads((root / "quick" / "accuracy" / "results.json").read_text())
    facet, mace = res["rows"]
    assert facet["forces_mae"] == 80.25 and mace["forces_mae"] == 90.5
    assert mace["steps"] == 400 and facet["status"] == "ok"
    assert (root / "quick" / "accuracy" / "accuracy_mae.png").exists()
    empty = tmp_path_factory.mktemp("empty")
    assert main(["bench", "accuracy", "--quick", "--root", str(empty)]) == 0
    rows = json.loads((empty / "quick" / "accuracy" / "results.json").read_text())["rows"]
    assert [r["trainer"] for r in rows] == ["facet", "mace"]
    for r in rows:
        assert r["status"].startswith("skipped: no recorded run") and "accuracy.json" in r["status"]
    assert "accuracy.json not found" in (empty / "quick" / "accuracy" / "report.md").read_text()


def test_model_rows_keep_the_script_numbers(tmp_path):
    raw = {"jax": "x", "device": "cpu", "rows": [
        {"preset": "facet-s", "product": "cg-dense", "atoms": 64, "edges": 1792, "params": 252057,
         "compile_s": 9.2, "step_s": 0.005, "step_min_s": 0.0043, "step_max_s": 0.0058,
         "atoms_per_s": 12800.0,
         "split": {"radial": 0.2, "product": 0.5, "readout": 0.3}}]}  # fmt: skip
    m = meta.run_meta(dtype="float32", seed=0, command="facet bench model --quick")
    res = wrapped.model_result(raw, m)
    (r,) = res["rows"]
    assert r["atoms_per_s"] == 12800.0 and r["status"] == "ok" and r["device_kind"]
    text = wrapped.write_model_report(res, tmp_path).read_text()
    assert "12,800" in text and "product 50%" in text
    failed = wrapped.model_result(None, m, "failed: scripts/bench_model.py exit 1: boom")
    text = wrapped.write_model_report(failed, tmp_path / "f").read_text()
    assert "Not measured: failed: scripts/bench_model.py exit 1: boom" in text


def test_md_and_relax_are_selections_of_the_bench_command_itself():
    """``facet.cli.bench`` alone registers ``md`` and ``relax`` (no other module imported), and
    their runner is the installed :mod:`facet.bench.dynamics`, not a file of a checkout."""
    code = (
        "import argparse, json, sys; from facet.cli import bench; "
        "p = argparse.ArgumentParser(); bench.add_arguments(p); "
        "a = p.parse_args(['relax', '--quick', '--models', 'facet-s']); "
        "print(json.dumps([list(bench.SELECTIONS), a.only, a.models, "
        "'facet.cli.md' in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    names, only, models, md_loaded = json.loads(out.stdout)
    assert {"md", "relax"} <= set(names)
    assert (only, models, md_loaded) == ("relax", "facet-s", False)


def test_all_commands_and_peer_options(monkeypatch, tmp_path):
    monkeypatch.setenv("FACET_VENVS_DIR", str(tmp_path))
    monkeypatch.setenv("FACET_NEQUIX_MODEL", "weights.nqx")
    venvs, nequix = run_all.peer_options(None, None)
    assert venvs == str(tmp_path) and nequix == "weights.nqx"
    args = Namespace(quick=True, pof=None, root=Path("docs/benchmarks"))
    cmds = run_all.commands(args, venvs, nequix)
    assert list(cmds) == list(run_all.SEQUENCE)
    assert cmds["dynamics"][:4] == ["-m", "facet.bench.dynamics", "--only", "all"]
    assert "--quick" in cmds["dynamics"] and "weights.nqx" in cmds["dynamics"]
    assert all("--quick" in c for c in cmds.values())


def test_all_writes_every_selection_under_its_root():
    """``facet bench all --root R`` puts every report under R (R/quick/<sel> with --quick), where
    its summary looks for them; train and accuracy also read their recorded runs from R."""
    for quick, sub in ((True, ("quick",)), (False, ())):
        args = Namespace(quick=quick, pof=None, root=Path("/r"))
        for sel, cmd in run_all.commands(args, None, None).items():
            want = str(Path("/r", *sub, sel))
            if sel in ("train", "accuracy"):
                assert cmd[cmd.index("--root") + 1] == "/r" and "--out" not in cmd
            else:
                assert cmd[cmd.index("--out") + 1] == want, (sel, cmd)


def test_all_quick_records_each_selection_and_writes_the_summary(root):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-m", "facet", "bench", "all", "--quick", "--root", str(root),
         "--skip", "tp,model,scaling,dynamics"],
        capture_output=True, text=True, env=env, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    rec = json.loads((root / "quick" / "all.json").read_text())
    status = {e["selection"]: e["status"] for e in rec["selections"]}
    assert status == {"tp": "skipped: --skip", "model": "skipped: --skip",
                      "scaling": "skipped: --skip", "dynamics": "skipped: --skip",
                      "train": "ok", "accuracy": "ok"}  # fmt: skip
    page = (root / "quick" / "README.md").read_text()
    assert "facet-s vs mace-small, structures per CPU-s" in page
    assert "forces mae" in page


@pytest.mark.slow
def test_model_selection_runs_the_script(tmp_path):
    code = main(["bench", "model", "--quick", "--out", str(tmp_path), "--", "--presets",
                 "facet-s", "--sizes", "1", "--repeats", "1"])  # fmt: skip
    assert code == 0
    (r,) = json.loads((tmp_path / "results.json").read_text())["rows"]
    raw = json.loads((tmp_path / "bench_model.json").read_text())["rows"][0]
    assert r["atoms"] == 8 and r["atoms_per_s"] == raw["atoms_per_s"]
    assert sum(r["split"].values()) == pytest.approx(1.0, abs=0.01)
