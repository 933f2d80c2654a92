"""Every user mistake in every verb: one line on stderr naming the culprit, exit code 2, no
traceback, and no file of the user's changed (issue 17, item 12 and the items it lists)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.io import write

from facet.cli import main


def _snapshot(root):
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def files(tmp_path_factory, morse_model):
    d = tmp_path_factory.mktemp("inputs")
    cu = bulk("Cu", "fcc", a=3.6) * (2, 2, 2)
    write(d / "cu.extxyz", cu)
    write(d / "cu.cif", cu)
    write(d / "molecule.xyz", Atoms("Cu3", positions=[[0, 0, 0], [2.5, 0, 0], [0, 2.5, 0]]))
    over = cu.copy()
    over.positions[1] = over.positions[0] + [0.1, 0, 0]
    write(d / "overlap.extxyz", over)
    (d / "garbage.extxyz").write_bytes(bytes(range(256)) * 8)
    (d / "garbage.db").write_bytes(b"\x00\xff" * 600)
    (d / "bad.yaml").write_text("optim:\n  lr: [1, 2\nrun: {a: 1}\n")
    (d / "empty.extxyz").write_text("")
    (d / "emptyobj.json").write_text("{}")
    (d / "list.json").write_text("[1, 2, 3]")
    (d / "notpreprocessed").mkdir()
    (d / "notpreprocessed" / "x.txt").write_text("hello")
    (d / "afile").write_text("I am a file")
    # a model folder whose config.yaml holds a Python object tag (yaml ConstructorError)
    (d / "evilmodel").mkdir()
    (d / "evilmodel" / "config.yaml").write_text("model: !!python/object:os.system {}\n")
    (d / "evilmodel" / "COMPLETE").write_text("x")
    (d / "evilmodel" / "meta.json").write_text("{}")
    from ase.calculators.singlepoint import SinglePointCalculator

    og = Atoms("SiOg", positions=[[0, 0, 0], [2.4, 0, 0]], cell=[6, 6, 6], pbc=True)
    og.calc = SinglePointCalculator(og, energy=-5.0, forces=np.zeros((2, 3)))
    write(d / "og.extxyz", og)
    # a small labelled MPTrj file for train/preprocess
    from data_factories import build_mptrj

    (d / "tiny.json").write_text(json.dumps(build_mptrj(np.random.default_rng(0), 3, 2)))
    truncated = (d / "tiny.json").read_text()[:300]
    (d / "truncated.json").write_text(truncated)
    return d


def _train(d, *over):
    return ["train", "--config", str(d / "cfg.yaml"), *over]


CASES = {
    # relax
    "relax-missing-file": (lambda d: ["relax", str(d / "nothere.cif")], "nothere.cif"),
    "relax-model-typo": (lambda d: ["relax", str(d / "cu.cif"), "--model", "defualt"], "defualt"),
    "relax-steps-negative": (
        lambda d: ["relax", str(d / "cu.cif"), "--model", "test-morse", "--steps", "-1"],
        "--steps",
    ),
    "relax-fmax-negative": (
        lambda d: ["relax", str(d / "cu.cif"), "--model", "test-morse", "--fmax", "-1"],
        "--fmax",
    ),
    "relax-overlap": (
        lambda d: ["relax", str(d / "overlap.extxyz"), "--model", "test-morse", "-o",
                   str(d / "out" / "r.extxyz"), "--no-progress"],
        "overlapping",
    ),
    "relax-garbage-extxyz": (
        lambda d: ["relax", str(d / "garbage.extxyz"), "--model", "test-morse"],
        "garbage.extxyz",
    ),
    "relax-garbage-db": (
        lambda d: ["relax", str(d / "garbage.db"), "--model", "test-morse"], "garbage.db"
    ),
    "relax-output-unknown-format": (
        lambda d: ["relax", str(d / "cu.cif"), "--model", "test-morse", "-o",
                   str(d / "out" / "relaxed.unknownext")],
        "relaxed.unknownext",
    ),
    # md
    "md-steps-negative": (
        lambda d: ["md", str(d / "cu.cif"), "--model", "test-morse", "--steps", "-5"], "--steps"
    ),
    "md-temperature-negative": (
        lambda d: ["md", str(d / "cu.cif"), "--model", "test-morse", "--temperature", "-300"],
        "--temperature",
    ),
    "md-timestep-zero": (
        lambda d: ["md", str(d / "cu.cif"), "--model", "test-morse", "--timestep", "0"],
        "--timestep",
    ),
    "md-npt-molecule": (
        lambda d: ["md", str(d / "molecule.xyz"), "--model", "test-morse", "--ensemble", "npt",
                   "--steps", "2", "-o", str(d / "out" / "m.extxyz")],
        "NPT",
    ),
    "md-overlap": (
        lambda d: ["md", str(d / "overlap.extxyz"), "--model", "test-morse", "--steps", "2",
                   "-o", str(d / "out" / "o.extxyz")],
        "overlapping",
    ),
    "md-output-is-input": (
        lambda d: ["md", str(d / "cu.extxyz"), "--model", "test-morse", "--steps", "2", "-o",
                   str(d / "cu.extxyz")],
        "cu.extxyz",
    ),
    "md-log-is-input": (
        lambda d: ["md", str(d / "cu.extxyz"), "--model", "test-morse", "--steps", "2",
                   "--log", str(d / "cu.extxyz"), "-o", str(d / "out" / "x.extxyz")],
        "cu.extxyz",
    ),
    # preprocess
    "preprocess-garbage-extxyz": (
        lambda d: ["preprocess", str(d / "garbage.extxyz"), "--out", str(d / "out" / "p1"),
                   "--no-progress"],
        "garbage.extxyz",
    ),
    "preprocess-garbage-db": (
        lambda d: ["preprocess", str(d / "garbage.db"), "--out", str(d / "out" / "p2"),
                   "--no-progress"],
        "garbage.db",
    ),
    "preprocess-empty-extxyz": (
        lambda d: ["preprocess", str(d / "empty.extxyz"), "--out", str(d / "out" / "p3"),
                   "--no-progress"],
        "no frames read from",
    ),
    "preprocess-empty-object": (
        lambda d: ["preprocess", str(d / "emptyobj.json"), "--out", str(d / "out" / "p4"),
                   "--no-progress"],
        "no frames read from",
    ),
    "preprocess-json-list": (
        lambda d: ["preprocess", str(d / "list.json"), "--out", str(d / "out" / "p5"),
                   "--no-progress"],
        "list.json",
    ),
    "preprocess-truncated-json": (
        lambda d: ["preprocess", str(d / "truncated.json"), "--out", str(d / "out" / "p6"),
                   "--no-progress"],
        "truncated",
    ),
    "preprocess-into-foreign-folder": (
        lambda d: ["preprocess", str(d / "tiny.json"), "--out", str(d / "notpreprocessed"),
                   "--no-progress"],
        "--overwrite",
    ),
    "preprocess-val-fraction": (
        lambda d: ["preprocess", str(d / "tiny.json"), "--out", str(d / "out" / "p7"),
                   "--val-fraction", "2"],
        "--val-fraction",
    ),
    # train
    "train-yaml-syntax": (lambda d: ["train", "--config", str(d / "bad.yaml")], "bad.yaml"),
    "train-overrides-typo": (
        lambda d: _train(d, "model.overrides={n_layerz: 2}"), "model.overrides"
    ),
    "train-overrides-type": (
        lambda d: _train(d, "model.overrides={num_layers: two}"), "model.overrides"
    ),
    "train-unknown-preset": (lambda d: _train(d, "model.preset=facet-xxl"), "model.preset"),
    "train-unknown-label": (
        lambda d: _train(d, "data.energy_label=total_energy"), "data.energy_label"
    ),
    "train-edge-budget": (lambda d: _train(d, "data.max_edges=8"), "data.max_edges"),
    "train-unpreprocessed-folder": (
        lambda d: _train(d, f"data.train=[{d / 'notpreprocessed'}]"), "notpreprocessed"
    ),
    "train-out-dir-is-file": (lambda d: _train(d, f"run.out_dir={d / 'afile'}"), "run.out_dir"),
    "train-nan-final-lr": (lambda d: _train(d, "optim.final_lr_factor=.nan"),
                           "optim.final_lr_factor"),
    "train-b1": (lambda d: _train(d, "optim.b1=5"), "optim.b1"),
    "train-clip-nan": (lambda d: _train(d, "optim.clip_norm=.nan"), "optim.clip_norm"),
    "train-empty-data": (
        lambda d: _train(d, f"data.train=[{d / 'emptyobj.json'}]"), "no frames read from"
    ),
    # evaluate / info
    "evaluate-yaml-constructor": (
        lambda d: ["evaluate", "--model", str(d / "evilmodel"), "--data", str(d / "tiny.json"),
                   "--out", str(d / "out" / "ev")],
        "evilmodel",
    ),
    "relax-yaml-constructor": (
        lambda d: ["relax", str(d / "cu.cif"), "--model", str(d / "evilmodel")], "evilmodel"
    ),
    "evaluate-unsupported-element": (
        lambda d: ["evaluate", "--model", "default", "--data", str(d / "og.extxyz"), "--out",
                   str(d / "out" / "ev2")],
        "does not support element(s) Og",
    ),
    "evaluate-missing-model": (
        lambda d: ["evaluate", "--model", str(d / "nomodel"), "--data", str(d / "tiny.json")],
        "nomodel",
    ),
}


@pytest.fixture(scope="module")
def train_cfg(files):
    cfg = files / "cfg.yaml"
    cfg.write_text(
        "model: {preset: facet-s}\n"
        f"data: {{train: [{files / 'tiny.json'}], val_fraction: 0.0}}\n"
        f"run: {{out_dir: {files / 'out' / 'run'}, max_steps: 1, progress: false}}\n"
    )
    return cfg


@pytest.mark.parametrize("case", sorted(CASES))
def test_user_error_is_one_line_exit_2(case, files, train_cfg, capsys):
    argv_of, needle = CASES[case]
    (files / "out").mkdir(exist_ok=True)
    before = _snapshot(files)
    try:
        rc = main(argv_of(files))
    except SystemExit as e:  # argparse
        rc = e.code
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip() and ln.startswith("facet")]
    assert rc == 2, f"{case}: exit code {rc}, stderr:\n{err}"
    assert "Traceback" not in err, err
    assert len(lines) == 1, err
    assert needle in lines[0], lines[0]
    assert "--on-error skip" not in err or "skip" in case, err
    after = _snapshot(files)
    changed = {k for k in before if after.get(k) != before[k]}
    assert not changed, f"{case} changed or removed {changed}"


def test_internal_fault_keeps_traceback_and_says_bug(files, capsys, monkeypatch):
    import facet.cli.info as info

    def boom(args):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(info, "run", boom)
    rc = main(["info"])
    err = capsys.readouterr().err
    assert rc == 1
    assert "Traceback" in err and "ZeroDivisionError" in err
    assert "bug" in err.splitlines()[-1]


@pytest.mark.parametrize("verb", ["info", "preprocess", "train", "evaluate", "relax", "md"])
def test_help_shows_defaults(verb, capsys):
    with pytest.raises(SystemExit):
        main([verb, "--help"])
    assert "(default:" in capsys.readouterr().out
